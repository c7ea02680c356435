package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// maxReflectionFiles bounds the files a server's reflection may send for one method.
const maxReflectionFiles = 512

// GRPCMethod is a unary gRPC method described by the server's reflection service.
type GRPCMethod struct {
	// Path is the method's path on the wire: /package.Service/Method.
	Path string
	// Desc describes the method: its input and output messages.
	Desc protoreflect.MethodDescriptor
}

// ResolveGRPC asks the server behind cc, through its reflection service (grpc.reflection.v1,
// which every svckit service runs), for the method called name: "package.Service/Method",
// "Service/Method", "package.Service.Method" or just "Method" when one service alone has
// it. Bound the time with ctx.
func ResolveGRPC(ctx context.Context, cc grpc.ClientConnInterface, name string) (*GRPCMethod, error) {
	svcName, method := "", name
	if i := strings.LastIndexAny(name, "/."); i >= 0 {
		svcName, method = strings.TrimPrefix(name[:i], "/"), name[i+1:]
	}
	if method == "" {
		return nil, fmt.Errorf("grpc method %q: no method name", name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := rpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("grpc reflection: %w", err)
	}
	ask := func(req *rpb.ServerReflectionRequest) (*rpb.ServerReflectionResponse, error) {
		if err := stream.Send(req); err != nil {
			return nil, fmt.Errorf("grpc reflection: %w", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("grpc reflection: %w", err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			return nil, fmt.Errorf("grpc reflection: %s: %s", codes.Code(e.GetErrorCode()), e.GetErrorMessage())
		}
		return resp, nil
	}
	resp, err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: "*"}})
	if err != nil {
		return nil, err
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	slices.Sort(services)
	var candidates []string
	for _, s := range services {
		if svcName == "" || s == svcName || strings.HasSuffix(s, "."+svcName) {
			candidates = append(candidates, s)
		}
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("grpc method %q: no service %q; the server has: %s", name, svcName, strings.Join(services, ", "))
	}
	var found []*GRPCMethod
	for _, s := range candidates {
		sd, err := describeService(ask, s)
		if err != nil {
			return nil, err
		}
		for i := range sd.Methods().Len() {
			if m := sd.Methods().Get(i); strings.EqualFold(string(m.Name()), method) {
				found = append(found, &GRPCMethod{Path: "/" + s + "/" + string(m.Name()), Desc: m})
			}
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("grpc method %q: not found in %s", name, strings.Join(candidates, ", "))
	case len(found) > 1:
		var paths []string
		for _, f := range found {
			paths = append(paths, f.Path)
		}
		return nil, fmt.Errorf("grpc method %q is ambiguous: %s", name, strings.Join(paths, ", "))
	}
	m := found[0]
	if m.Desc.IsStreamingClient() || m.Desc.IsStreamingServer() {
		return nil, fmt.Errorf("grpc method %s streams; svckit load calls unary methods only", m.Path)
	}
	return m, nil
}

// describeService builds the descriptor of service s from the files reflection sends: the
// one that defines it and every file that one imports.
func describeService(ask func(*rpb.ServerReflectionRequest) (*rpb.ServerReflectionResponse, error), s string) (protoreflect.ServiceDescriptor, error) {
	files := map[string]*descriptorpb.FileDescriptorProto{}
	add := func(resp *rpb.ServerReflectionResponse) error {
		for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("grpc reflection: a file descriptor: %w", err)
			}
			files[fd.GetName()] = fd
		}
		if len(files) > maxReflectionFiles {
			return fmt.Errorf("grpc reflection: more than %d files for %s", maxReflectionFiles, s)
		}
		return nil
	}
	resp, err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: s}})
	if err != nil {
		return nil, err
	}
	if err := add(resp); err != nil {
		return nil, err
	}
	for {
		var missing string
		for _, fd := range files {
			for _, dep := range fd.GetDependency() {
				if files[dep] == nil {
					missing = dep
				}
			}
		}
		if missing == "" {
			break
		}
		resp, err := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: missing}})
		if err != nil {
			return nil, err
		}
		if err := add(resp); err != nil {
			return nil, err
		}
		if files[missing] == nil {
			return nil, fmt.Errorf("grpc reflection: the server did not send %s", missing)
		}
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, fd := range files {
		set.File = append(set.File, fd)
	}
	reg, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("grpc reflection: %w", err)
	}
	d, err := reg.FindDescriptorByName(protoreflect.FullName(s))
	if err != nil {
		return nil, fmt.Errorf("grpc reflection: %s: %w", s, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("grpc reflection: %s is not a service", s)
	}
	return sd, nil
}

// GRPCCall returns a CallFunc that calls m on cc with the request rendered from body, JSON
// in the protobuf mapping (protojson), and md as metadata; each call has the timeout. The
// status is the gRPC code (0 is OK). It checks the body renders into a valid request first.
func GRPCCall(cc grpc.ClientConnInterface, m *GRPCMethod, body *Template, md metadata.MD, timeout time.Duration) (CallFunc, error) {
	in := m.Desc.Input()
	parse := func(b []byte) (proto.Message, error) {
		msg := dynamicpb.NewMessage(in)
		if len(b) == 0 {
			return msg, nil
		}
		if err := (protojson.UnmarshalOptions{}).Unmarshal(b, msg); err != nil {
			return nil, fmt.Errorf("request body is not a %s in JSON: %w", in.FullName(), err)
		}
		return msg, nil
	}
	first, err := body.Render(0, 0)
	if err != nil {
		return nil, err
	}
	fixed, err := parse(first)
	if err != nil {
		return nil, err
	}
	if !body.Static() {
		fixed = nil
	}
	out := m.Desc.Output()
	return func(ctx context.Context, worker int, seq int64) (int, []byte, error) {
		req := fixed
		if req == nil {
			b, err := body.Render(seq, worker)
			if err == nil {
				req, err = parse(b)
			}
			if err != nil {
				return int(codes.InvalidArgument), nil, fmt.Errorf("call %d: %w", seq, err)
			}
		}
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if len(md) > 0 {
			ctx = metadata.NewOutgoingContext(ctx, md)
		}
		if err := cc.Invoke(ctx, m.Path, req, dynamicpb.NewMessage(out)); err != nil {
			s := status.Convert(err)
			return int(s.Code()), nil, fmt.Errorf("%s: %s", s.Code(), s.Message())
		}
		return int(codes.OK), nil, nil
	}, nil
}
