package gen

import (
	"go/token"
	"go/types"
)

// Package is one Go package with the service interfaces to generate code for, as the
// generator understands it: every type the services use resolved to a Type.
type Package struct {
	Name string // Go package name
	Path string // import path
	Dir  string // absolute directory

	Services []*Service
	Messages []*Message // every protobuf message, in order of first use
	Enums    []*Enum    // named string and integer types with constants, in order of first use

	ProtoPackage string // protobuf package, the Go package name unless an annotation sets it
	PBDir        string // absolute directory of the generated protobuf Go package
	PBPath       string // import path of the protobuf Go package
	PBName       string // package name of the protobuf Go package

	types *types.Package
	fset  *token.FileSet
}

// Service is one Go interface to serve.
type Service struct {
	Name     string // Go interface name
	Doc      string
	Pos      token.Position
	Prefix   string // prefix of generated names: "" for an interface named Service, else its name
	GRPCName string // full gRPC service name, "pkg.Service"
	Proto    string // protobuf service name
	Auth     *Auth  // the //svckit:auth of the interface: its methods' default; nil if none
	Methods  []*Method
}

// Auth is what a method's callers must present, from //svckit:auth: nothing (Public), or
// a bearer JWT with, optionally, the roles or scopes the auth policy requires. The OpenAPI
// document declares it; the auth middleware in main enforces it.
type Auth struct {
	Public bool
	Roles  []string // required roles or scopes, as the security requirement lists them
}

// Method is one method of a service.
type Method struct {
	Name string
	Doc  string
	Pos  token.Position
	Svc  *Service

	Params  []*Param // the parameters after ctx
	Results []*Param // the results before error; empty for a streaming method

	Req     *Message // the request message: a wrapper of Params, or the one struct parameter
	ReqUser bool     // the one parameter is a struct used as the request
	ReqPtr  bool     // ... passed as a pointer

	Resp     *Message // the response message (for a streaming method, of one item)
	RespUser bool     // the one result (or stream item) is a struct used as the response
	RespPtr  bool     // ... returned as a pointer

	Stream *Type // the item type of a streaming method; nil for unary methods

	HTTPMethod string // "" when not served over HTTP
	HTTPPath   string
	PathFields []*Field // request fields bound from path wildcards
	QueryField []*Field // request fields bound from the query string
	Idempotent bool
	Auth       *Auth  // the method's //svckit:auth, else its interface's; nil if neither has one
	NATS       string // the //svckit:nats subject: "" for svc.<service>.<Method>, "-" for not served
}

// Param is a parameter or result of a method.
type Param struct {
	Name  string // Go name in the interface, or "" if unnamed
	Field *Field // its field in the wrapper message
}

// Message is a protobuf message and the Go struct it converts to and from.
type Message struct {
	Name    string     // protobuf message name, also the Go type name in the pb package
	Go      types.Type // the user's struct type; nil for generated wrappers
	GoName  string     // the generated wrapper's Go type name
	Wrapper bool       // generated from parameters or results
	Fields  []*Field
	Doc     string
	Pos     token.Position
	Local   bool // the user's struct is declared in the service package
	binder  bool // the user's struct has its own BindRequest method
	pather  bool // ... its own PathParam method
	querier bool // ... its own URLQuery method
}

// Field is a field of a message.
type Field struct {
	GoName    string // Go field name (a path "A.B" for fields promoted from embedded structs)
	JSONName  string // name in JSON, as encoding/json writes it
	OmitEmpty bool
	ProtoName string
	Number    int
	Type      *Type
	Doc       string
}

// Kind classifies a Type.
type Kind int

// The kinds of types the generator supports.
const (
	KindBasic    Kind = iota // bool, string, integers, floats, and named types of them
	KindBytes                // []byte
	KindTime                 // time.Time
	KindDuration             // time.Duration
	KindPointer              // *T: an optional field
	KindSlice                // []T
	KindMap                  // map[string]T
	KindStruct               // a named struct: a message
)

// Type is a Go type the generator knows how to carry.
type Type struct {
	Kind  Kind
	Go    types.Type   // as written (aliases kept) for printing
	Basic *types.Basic // the underlying basic type (KindBasic, and the key of KindMap)
	Named bool         // a named type whose conversions need an explicit cast
	Enum  *Enum        // the constants of a named basic type, if any
	Elem  *Type        // KindPointer, KindSlice, KindMap
	Msg   *Message     // KindStruct
}

// Enum is a named string or integer type and its constants.
type Enum struct {
	Name   string
	Go     types.Type
	Values []EnumValue
}

// EnumValue is one constant of an Enum.
type EnumValue struct {
	Name  string
	Value string // the constant's value as Go writes it: a quoted string or a number
	Doc   string
}

// scalar reports whether t is a basic type: a value for path and query parameters.
func (t *Type) scalar() bool { return t.Kind == KindBasic }
