package grpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// ErrorDomain is the domain of the errdetails.ErrorInfo of the statuses that [ToStatus]
// makes outside a served call. A svckit server names its own protobuf service instead
// ("shop.catalog.v1.Catalog"), as google/rpc/error_details.proto asks of a domain. A
// client trusts the kind and metadata of statuses from this domain and from the service
// it called.
const ErrorDomain = "svckit"

// ToStatus returns the gRPC status for err: the code of svcerr.KindOf(err), the
// caller-safe message of svcerr.From(err), an errdetails.ErrorInfo whose reason is the
// kind in UPPER_SNAKE_CASE (svcerr.Kind.Reason: "NOT_FOUND"), whose domain is
// [ErrorDomain] and whose metadata is the error's Meta, and an errdetails.BadRequest
// listing its Fields, if any. A svckit server sends the same status with its protobuf
// service as the domain. An error that is not an *svcerr.Error becomes codes.Internal
// "internal error": its text does not leave the process. ToStatus(nil) is the OK status.
func ToStatus(err error) *status.Status { return toStatus(ErrorDomain, "", err) }

// toStatus is ToStatus with the given ErrorInfo domain and, when requestID is not empty,
// an errdetails.RequestInfo that carries it.
func toStatus(domain, requestID string, err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	e := svcerr.From(err)
	st := status.New(e.Kind.GRPCCode(), e.Message)
	details := make([]protoadapt.MessageV1, 1, 3)
	details[0] = &errdetails.ErrorInfo{Reason: e.Kind.Reason(), Domain: domain, Metadata: e.Meta}
	if len(e.Fields) > 0 {
		br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(e.Fields))}
		for i, f := range e.Fields {
			br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description}
		}
		details = append(details, br)
	}
	if requestID != "" {
		details = append(details, &errdetails.RequestInfo{RequestId: requestID})
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st
}

// statusError is the status error that the server of the named protobuf service sends
// for err: ToStatus(err) with the service as the ErrorInfo domain and, when the server
// generated the call's request id (generatedID is not empty), an errdetails.RequestInfo
// with that id, so that a caller that sent none can quote it.
func statusError(service, generatedID string, err error) error {
	return toStatus(service, generatedID, err).Err()
}

// FromStatus returns the *svcerr.Error that a gRPC call error stands for. A status made by
// [ToStatus] (ErrorInfo domain [ErrorDomain]) comes back with the Kind, Message, Fields
// and Meta the server's error had. Any other status gets the kind of its code and keeps
// its message, except for the kinds that gRPC's client makes itself from a condition of
// the connection rather than of the request — Unavailable, DeadlineExceeded, Internal,
// Unknown and DataLoss, and Unimplemented, Unauthenticated, PermissionDenied and
// ResourceExhausted, which it gives a plain HTTP answer (a proxy's 404 page) and its own
// size limits: their messages are gRPC's transport text ("connection error: desc = … dial
// tcp 10.0.0.7:8081 …", TLS handshake failures, a foreign HTTP body) or a foreign server's
// internals, so they get a fixed message ("service unavailable", "deadline exceeded",
// "internal error", "not implemented", …) and the status stays in the cause, for logs and
// spans. An error that is already an *svcerr.Error is returned unchanged, and other errors
// that are not statuses are classified by svcerr.From. The returned error's cause is err.
// FromStatus(nil) is nil.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	e, origin := fromStatus(err, "")
	if origin == foreignStatus {
		e = withPublicMessage(e, err)
	}
	return e
}

// origin says where fromStatus found an error's kind and message.
type origin uint8

const (
	localError    origin = iota // an *svcerr.Error made in this process, or a plain error
	svckitStatus                // a status sent by a svckit server
	foreignStatus               // any other status: gRPC's own, or a foreign server's
)

// fromStatus reads err. A status is a svckit server's when its ErrorInfo has the domain
// [ErrorDomain] or service (the protobuf service that was called; "" for none); its
// reason is the kind in UPPER_SNAKE_CASE, or in snake_case as servers before svckit's
// UPPER_SNAKE_CASE reasons sent it.
func fromStatus(err error, service string) (*svcerr.Error, origin) {
	var se *svcerr.Error
	if errors.As(err, &se) {
		return se, localError
	}
	st, ok := status.FromError(err)
	if !ok {
		return svcerr.From(err), localError
	}
	e := &svcerr.Error{Kind: svcerr.KindFromGRPC(st.Code()), Message: st.Message(), Cause: err}
	if st.Code() == codes.OK {
		// Not an error status; FromError only returns it for a wrapped OK status.
		e.Kind = svcerr.Unknown
	}
	from := foreignStatus
	for _, d := range st.Proto().GetDetails() {
		switch d.GetTypeUrl() {
		case errorInfoURL:
			var info errdetails.ErrorInfo
			if d.UnmarshalTo(&info) != nil || (info.GetDomain() != ErrorDomain && (service == "" || info.GetDomain() != service)) {
				continue
			}
			from = svckitStatus
			if k, ok := svcerr.ParseReason(info.GetReason()); ok {
				e.Kind = k
			} else if k, ok := svcerr.ParseKind(info.GetReason()); ok {
				e.Kind = k
			}
			if len(info.GetMetadata()) > 0 {
				e.Meta = info.GetMetadata()
			}
		case requestInfoURL:
			var ri errdetails.RequestInfo
			if d.UnmarshalTo(&ri) == nil && meta.ValidRequestID(ri.GetRequestId()) {
				e.RequestID = ri.GetRequestId()
			}
		case badRequestURL:
			var br errdetails.BadRequest
			if d.UnmarshalTo(&br) != nil {
				continue
			}
			for _, v := range br.GetFieldViolations() {
				e.Fields = append(e.Fields, svcerr.FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return e, from
}

// withPublicMessage returns e with a fixed message when its message was not written by a
// svckit server and its kind is one that gRPC's client makes itself from a condition of
// the connection rather than of the request: a failure of the system (unavailable,
// deadline exceeded, internal, unknown, data loss), or the kinds gRPC gives an answer that
// is not gRPC at all — a proxy's or a plain HTTP server's 401, 403 or 404 becomes
// unauthenticated, permission denied or unimplemented with the foreign body in its message
// ("unexpected HTTP status code received from server: 404 …; transport: … data: …") — and
// its own size limits (resource exhausted, "grpc: received message larger than max"). Such
// messages are transport text, peer addresses or a foreign server's internals, which must
// not travel on to callers. cause, the original error, keeps the detail for logs and
// spans. Other errors are returned unchanged.
func withPublicMessage(e *svcerr.Error, cause error) *svcerr.Error {
	var msg string
	switch e.Kind {
	case svcerr.Unavailable:
		msg = "service unavailable"
	case svcerr.DeadlineExceeded:
		msg = "deadline exceeded"
	case svcerr.Internal, svcerr.Unknown, svcerr.DataLoss:
		msg = "internal error"
	case svcerr.Unimplemented:
		msg = "not implemented"
	case svcerr.Unauthenticated:
		msg = "unauthenticated"
	case svcerr.PermissionDenied:
		msg = "permission denied"
	case svcerr.ResourceExhausted:
		msg = "resource exhausted"
	default:
		return e
	}
	if e.Message == msg {
		return e
	}
	return &svcerr.Error{Kind: e.Kind, Message: msg, Meta: e.Meta, Cause: cause, RequestID: e.RequestID}
}

const (
	errorInfoURL   = "type.googleapis.com/google.rpc.ErrorInfo"
	badRequestURL  = "type.googleapis.com/google.rpc.BadRequest"
	requestInfoURL = "type.googleapis.com/google.rpc.RequestInfo"
)

// callError turns the error of an outgoing call to the named protobuf service into an
// *svcerr.Error. Only a svckit server's status (ErrorInfo domain service or
// [ErrorDomain]) keeps its message: an error made on the way — by gRPC's transport, by
// the connection, a pool or a balancer in front of it — or a foreign server's status gets
// the fixed message of [withPublicMessage] for the kinds that describe a failure of the
// system, since its text (addresses, dial and TLS errors) must not reach the caller's
// callers. When the caller's own context ended the call, the context's error becomes the
// cause, so that errors.Is(err, context.Canceled) holds. A status's error has the
// RequestID of its errdetails.RequestInfo (a svckit server sends one when it made the id
// up), or else the id the call sent.
func callError(ctx context.Context, service string, err error) error {
	e, from := fromStatus(err, service)
	if from != svckitStatus {
		e = withPublicMessage(e, err)
	}
	if from != localError && e.RequestID == "" {
		e.RequestID = meta.FirstValidRequestID(meta.RequestID(ctx))
	}
	if ctxErr := ctx.Err(); ctxErr != nil && e.Cause == err && (e.Kind == svcerr.Canceled || e.Kind == svcerr.DeadlineExceeded) {
		e.Cause = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return e
}
