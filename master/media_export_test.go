package master

// SameShardPackets exposes the join's packet check to the black-box tests.
var SameShardPackets = sameShardPackets
