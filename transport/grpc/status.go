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
)

// ErrorDomain is the domain of the errdetails.ErrorInfo that svckit attaches to every error
// status it sends. A client trusts the kind and metadata of statuses from this domain.
const ErrorDomain = "svckit"

// ToStatus returns the gRPC status for err, as a svckit server sends it: the code of
// svcerr.KindOf(err), the caller-safe message of svcerr.From(err), an errdetails.ErrorInfo
// with the kind's name as reason, domain [ErrorDomain] and the error's Meta, and an
// errdetails.BadRequest listing its Fields, if any. An error that is not an *svcerr.Error
// becomes codes.Internal "internal error": its text does not leave the process.
// ToStatus(nil) is the OK status.
func ToStatus(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	e := svcerr.From(err)
	st := status.New(e.Kind.GRPCCode(), e.Message)
	details := make([]protoadapt.MessageV1, 1, 2)
	details[0] = &errdetails.ErrorInfo{Reason: e.Kind.String(), Domain: ErrorDomain, Metadata: e.Meta}
	if len(e.Fields) > 0 {
		br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(e.Fields))}
		for i, f := range e.Fields {
			br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description}
		}
		details = append(details, br)
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st
}

// statusError is ToStatus(err).Err().
func statusError(err error) error { return ToStatus(err).Err() }

// FromStatus returns the *svcerr.Error that a gRPC call error stands for. A status sent by a
// svckit server comes back with the Kind, Message, Fields and Meta the server's error had. Any
// other status keeps its message and gets the kind of its code. An error that is already an
// *svcerr.Error is returned unchanged, and other errors that are not statuses are classified
// by svcerr.From. The returned error's cause is err. FromStatus(nil) is nil.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	return fromStatus(err)
}

func fromStatus(err error) *svcerr.Error {
	var se *svcerr.Error
	if errors.As(err, &se) {
		return se
	}
	st, ok := status.FromError(err)
	if !ok {
		return svcerr.From(err)
	}
	e := &svcerr.Error{Kind: svcerr.KindFromGRPC(st.Code()), Message: st.Message(), Cause: err}
	if st.Code() == codes.OK {
		// Not an error status; FromError only returns it for a wrapped OK status.
		e.Kind = svcerr.Unknown
	}
	for _, d := range st.Proto().GetDetails() {
		switch d.GetTypeUrl() {
		case errorInfoURL:
			var info errdetails.ErrorInfo
			if d.UnmarshalTo(&info) != nil || info.GetDomain() != ErrorDomain {
				continue
			}
			if k, ok := svcerr.ParseKind(info.GetReason()); ok {
				e.Kind = k
			}
			if len(info.GetMetadata()) > 0 {
				e.Meta = info.GetMetadata()
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
	return e
}

const (
	errorInfoURL  = "type.googleapis.com/google.rpc.ErrorInfo"
	badRequestURL = "type.googleapis.com/google.rpc.BadRequest"
)

// callError turns the error of an outgoing call into an *svcerr.Error. When the caller's own
// context ended the call, the context's error becomes the cause, so that
// errors.Is(err, context.Canceled) holds.
func callError(ctx context.Context, err error) error {
	e := fromStatus(err)
	if ctxErr := ctx.Err(); ctxErr != nil && e.Cause == err && (e.Kind == svcerr.Canceled || e.Kind == svcerr.DeadlineExceeded) {
		e.Cause = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return e
}
