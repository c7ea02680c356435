package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Fast batch publishing (JetStream's "fast ingest", nats-server 2.14 and later, on a
// stream with allow_batched): the messages of one Publish call go out as one batch whose
// members carry their place in the reply subject, and the server answers with a few
// flow-control messages and one acknowledgement for the whole batch, sent once every
// message is stored, instead of one acknowledgement per message. The batch uses the
// "fail" gap mode: the server stores a prefix of the batch, and the acknowledgement says
// how long it is, so the messages after it are published again (their Nats-Msg-Id keeps
// that safe). Anything unexpected (an error answer, no answer in time) falls back to
// publishing the rest one acknowledgement per message.

// fastBatchMin is the smallest Publish call that goes out as a fast batch; a smaller one
// costs less with an acknowledgement per message.
const fastBatchMin = 8

// fastBatchMax bounds a batch; a longer Publish call is split.
const fastBatchMax = 1000

// fastBatchFlow is the largest number of messages the server may let pass between two
// flow-control messages.
const fastBatchFlow = 500

// fastBatches routes the server's answers to the batches waiting for them.
type fastBatches struct {
	prefix string // reply subjects: prefix.<batch id>.<flow>.fail.<seq>.<op>.$FI
	dotted string // prefix + "."
	sub    *nats.Subscription

	mu      sync.Mutex
	waiting map[string]chan []byte // batch id → its final answer
}

// startFastBatches subscribes to the answers of this bus's fast batches.
func startFastBatches(nc *nats.Conn) (*fastBatches, error) {
	f := &fastBatches{prefix: nc.NewInbox(), waiting: map[string]chan []byte{}}
	f.dotted = f.prefix + "."
	sub, err := nc.Subscribe(f.prefix+".>", f.answer)
	if err != nil {
		return nil, err
	}
	f.sub = sub
	return f, nil
}

// answer takes one message from the server: flow control, which needs nothing from us
// (the batch is bounded), or the batch's final answer, a PubAck or an error.
func (f *fastBatches) answer(m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, f.dotted)
	id, _, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	if isFlowMessage(m.Data) {
		return
	}
	f.mu.Lock()
	ch := f.waiting[id]
	f.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- m.Data:
	default:
	}
}

// isFlowMessage reports whether data is a flow-control message ({"type":"ack"|"gap"|"err",…})
// rather than a batch's final answer. An "err" message names a message that was not
// stored; the final answer that follows it says how much was.
func isFlowMessage(data []byte) bool {
	return len(data) > 8 && string(data[:8]) == `{"type":`
}

// batchAck is the server's final answer to a fast batch.
type batchAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Batch  string `json:"batch"`
	Count  int    `json:"count"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// errFastBatch is returned by publishFast when the server does not take fast batches.
var errFastBatch = errors.New("pubsub: fast batch refused")

// publishFast publishes msgs as one fast batch, encoded by w, and returns how many of
// them, from the first, the server has stored.
func (b *Bus) publishFast(ctx context.Context, w *wireEncoder, msgs []*Message) (int, error) {
	f := b.fast
	id := nuid.Next()
	ch := make(chan []byte, 1)
	f.mu.Lock()
	f.waiting[id] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
	}()
	// The reply subjects and ce-time headers of all the messages, built as one string: a
	// message's are substrings of it, not allocations of their own. ends[2i] ends
	// message i's reply subject, ends[2i+1] its time.
	base := f.dotted + id + "." + strconv.Itoa(fastBatchFlow) + ".fail."
	buf := make([]byte, 0, len(msgs)*(len(base)+12+len(time.RFC3339Nano)))
	ends := make([]int, 2*len(msgs))
	for i, m := range msgs {
		op := "1" // append
		switch {
		case i == len(msgs)-1:
			op = "2" // commit
		case i == 0:
			op = "0" // start
		}
		buf = append(buf, base...)
		buf = strconv.AppendInt(buf, int64(i+1), 10)
		buf = append(buf, '.')
		buf = append(buf, op...)
		buf = append(buf, ".$FI"...)
		ends[2*i] = len(buf)
		buf = appendCETime(buf, m)
		ends[2*i+1] = len(buf)
	}
	strs := string(buf)
	start := 0
	for i, m := range msgs {
		reply, at := strs[start:ends[2*i]], strs[ends[2*i]:ends[2*i+1]]
		start = ends[2*i+1]
		nm := w.msg(ctx, m, at)
		nm.Reply = reply
		if err := b.nc.PublishMsg(nm); err != nil {
			return 0, fmt.Errorf("pubsub: publish: %w", err)
		}
	}
	t := time.NewTimer(b.cfg.AckTimeout)
	defer t.Stop()
	select {
	case data := <-ch:
		var ack batchAck
		if err := json.Unmarshal(data, &ack); err != nil {
			return 0, fmt.Errorf("pubsub: batch acknowledgement: %w", err)
		}
		if ack.Error != nil {
			return 0, fmt.Errorf("%w: %s (%d)", errFastBatch, ack.Error.Description, ack.Error.ErrCode)
		}
		return min(max(ack.Count, 0), len(msgs)), nil
	case <-t.C:
		return 0, errors.New("pubsub: no batch acknowledgement in time")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
