package addsvc

import (
	"google.golang.org/grpc"

	"github.com/svckit/svckit/examples/addsvc/pb"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// GRPCService is the full name of the gRPC service in pb/addsvc.proto.
const GRPCService = "addsvc.Add"

// RegisterGRPC serves the endpoints as the gRPC service addsvc.Add.
func RegisterGRPC(s *sgrpc.Server, e Endpoints) {
	sgrpc.Unary(s, "Sum", e.Sum, decodeSumRequest, encodeSumResponse)
	sgrpc.Unary(s, "Concat", e.Concat, decodeConcatRequest, encodeConcatResponse)
	sgrpc.ServerStream(s, "Range", e.Range, decodeRangeRequest, encodeRangeItem)
}

// NewGRPCClient returns Endpoints that call addsvc.Add over cc.
func NewGRPCClient(cc grpc.ClientConnInterface, opts ...sgrpc.ClientOption) Endpoints {
	c := sgrpc.NewClient(cc, GRPCService, opts...)
	return Endpoints{
		Sum:    sgrpc.UnaryCall(c, "Sum", encodeSumRequest, decodeSumResponse),
		Concat: sgrpc.UnaryCall(c, "Concat", encodeConcatRequest, decodeConcatResponse),
		Range:  sgrpc.StreamCall(c, "Range", encodeRangeRequest, decodeRangeItem),
	}
}

func decodeSumRequest(m *pb.SumRequest) (SumRequest, error) {
	return SumRequest{A: m.GetA(), B: m.GetB()}, nil
}

func encodeSumResponse(r SumResponse) (*pb.SumReply, error) { return &pb.SumReply{V: r.V}, nil }

func decodeConcatRequest(m *pb.ConcatRequest) (ConcatRequest, error) {
	return ConcatRequest{A: m.GetA(), B: m.GetB()}, nil
}

func encodeConcatResponse(r ConcatResponse) (*pb.ConcatReply, error) {
	return &pb.ConcatReply{V: r.V}, nil
}

func decodeRangeRequest(m *pb.RangeRequest) (RangeRequest, error) {
	return RangeRequest{From: m.GetFrom(), To: m.GetTo()}, nil
}

func encodeRangeItem(v int64) (*pb.RangeReply, error) { return &pb.RangeReply{V: v}, nil }

func encodeSumRequest(r SumRequest) (*pb.SumRequest, error) {
	return &pb.SumRequest{A: r.A, B: r.B}, nil
}

func decodeSumResponse(m *pb.SumReply) (SumResponse, error) { return SumResponse{V: m.GetV()}, nil }

func encodeConcatRequest(r ConcatRequest) (*pb.ConcatRequest, error) {
	return &pb.ConcatRequest{A: r.A, B: r.B}, nil
}

func decodeConcatResponse(m *pb.ConcatReply) (ConcatResponse, error) {
	return ConcatResponse{V: m.GetV()}, nil
}

func encodeRangeRequest(r RangeRequest) (*pb.RangeRequest, error) {
	return &pb.RangeRequest{From: r.From, To: r.To}, nil
}

func decodeRangeItem(m *pb.RangeReply) (int64, error) { return m.GetV(), nil }
