// Package compat tells whether a change to a service's interface breaks its callers on
// the wire: `svckit gen -breaking REF` (docs/compat.md is the user's guide).
//
// A [Contract] is what callers depend on: the gRPC services, their methods and messages
// (field names, numbers, types, presence) and each method's HTTP route, NATS subject and
// auth. It is read from a Go package through the generator's model ([FromPackage] over
// [gen.Load]), from the package at a git revision ([OpenRef], [Snapshot.Load]) or from
// saved .proto and OpenAPI documents ([LoadFiles]). [Compare] lists the differences,
// each with the file and line of the declaration: the new side's, or for a removal the
// old side's (REF:path:line at a revision).
//
// Breaking: a removed or renamed service, method or field; a changed field number, type
// or JSON name; a request field that became required (a pointer that became a value, so
// proto3 optional became plain) or a response field that may now be unset; a changed or
// removed HTTP route or NATS subject; stricter auth; a method that started or stopped
// streaming. Compatible: new services, methods, routes and fields, relaxed auth.
//
// Messages are compared structurally along each method's request and response, not by
// name: renaming a Go struct changes nothing on the wire, and is not reported.
package compat
