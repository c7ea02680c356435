package pb

// SumReply is the former name of SumResponse, from the hand-written addsvc.proto.
//
// Deprecated: use SumResponse.
type SumReply = SumResponse
