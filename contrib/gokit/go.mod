module github.com/svckit/svckit/contrib/gokit

go 1.26.0

replace github.com/svckit/svckit => ../..

require (
	github.com/go-kit/kit v0.13.0
	github.com/svckit/svckit v0.0.0-00010101000000-000000000000
	golang.org/x/time v0.16.0
)

require (
	github.com/go-kit/log v0.2.0 // indirect
	github.com/go-logfmt/logfmt v0.5.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.85.0 // indirect
)
