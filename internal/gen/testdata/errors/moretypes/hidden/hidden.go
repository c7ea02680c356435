// Package hidden has an exported alias of an unexported type.
package hidden

type secret struct{ X int }

// Secret is an exported alias of an unexported type.
type Secret = secret

// Wrapper has an exported field of an unexported type.
type Wrapper struct {
	In secret `json:"in"`
}
