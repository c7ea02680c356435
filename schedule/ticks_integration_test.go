//go:build integration

package schedule_test

// replicaTicks is how many consecutive ticks the replica tests wait for.
const replicaTicks = 400
