package master

// PlanSideStreams exposes the side-stream plan to the black-box tests.
var PlanSideStreams = planSideStreams

// SameShardPackets exposes the join's packet check to the black-box tests.
var SameShardPackets = sameShardPackets
