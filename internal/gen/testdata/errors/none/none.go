// Package none has no exported interface.
package none

type hidden interface{ M() }
