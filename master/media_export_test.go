package master

// PlanSideStreams exposes the side-stream plan to the black-box tests.
var PlanSideStreams = planSideStreams
