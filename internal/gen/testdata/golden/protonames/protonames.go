// Package protonames has names that shadow each other in protobuf scopes: a method named
// like its message, a field named like its (unexported) type, a message named like the
// entry of a map field. The emitted .proto must still compile with protoc.
package protonames

import "context"

// item is an unexported struct of this package: its message is "item", like the field.
type item struct {
	N int `json:"n"`
}

// Box holds items.
type Box struct {
	Item   item            `json:"item"`
	Labels map[string]item `json:"labels"`
}

// LabelsEntry is named like the map entry protoc makes for a map field labels.
type LabelsEntry struct {
	X int `json:"x"`
}

// Other refers to LabelsEntry and has a map field labels.
type Other struct {
	E      LabelsEntry       `json:"e"`
	Labels map[string]string `json:"labels"`
}

// Service has methods named like their messages.
type Service interface {
	// Box returns the box.
	Box(ctx context.Context, b Box) (Box, error)
	// Other returns the other.
	Other(ctx context.Context, o Other) (Other, error)
}
