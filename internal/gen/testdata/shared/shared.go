// Package shared holds types that the services of other packages use: nested structs
// from another package, a generic type, a named integer enum and an alias.
package shared

import "time"

// Address is a postal address.
type Address struct {
	Street string `json:"street"`
	City   string `json:"city"`
	// Geo is where the address is, if known.
	Geo *Point `json:"geo,omitempty"`
}

// Point is a position on Earth.
type Point struct {
	Lat, Lng float64
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// Level is an importance.
type Level int32

// The levels.
const (
	LevelLow Level = iota + 1
	LevelHigh
)

// Stamp is an alias of time.Time.
type Stamp = time.Time
