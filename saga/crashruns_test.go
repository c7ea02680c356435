//go:build !integration

package saga_test

// crashRuns is how many times TestCrash kills its child.
const crashRuns = 20
