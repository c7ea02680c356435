package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EventSource is what the Events page reads: message streams with their subjects and
// consumers, and a stream's most recent messages.
type EventSource interface {
	// Streams lists every stream with its consumers.
	Streams(ctx context.Context) ([]StreamInfo, error)
	// Messages returns up to n of the stream's most recent messages, newest first.
	Messages(ctx context.Context, stream string, n int) ([]Message, error)
}

// StreamInfo describes one stream.
type StreamInfo struct {
	Name       string         `json:"name"`
	Subjects   []string       `json:"subjects"`
	Messages   uint64         `json:"messages"`
	Bytes      uint64         `json:"bytes"`
	FirstSeq   uint64         `json:"first_seq"`
	LastSeq    uint64         `json:"last_seq"`
	LastTime   time.Time      `json:"last_time"`
	DeadLetter bool           `json:"dead_letter"` // a stream of dead letters
	Consumers  []ConsumerInfo `json:"consumers"`
}

// ConsumerInfo describes one consumer of a stream and how far behind it is.
type ConsumerInfo struct {
	Name          string `json:"name"`
	FilterSubject string `json:"filter_subject,omitempty"`
	NumPending    uint64 `json:"num_pending"`     // messages not yet delivered: the lag
	NumAckPending int    `json:"num_ack_pending"` // delivered, not yet acknowledged
	Redelivered   int    `json:"num_redelivered"`
	Delivered     uint64 `json:"delivered_seq"`
	AckFloor      uint64 `json:"ack_floor_seq"`
}

// Message is one stored message.
type Message struct {
	Stream   string              `json:"stream"`
	Subject  string              `json:"subject"`                // without a key partition suffix
	Wire     string              `json:"wire_subject,omitempty"` // the subject as stored, when it has one
	Sequence uint64              `json:"seq"`
	Time     time.Time           `json:"time"`
	Header   map[string][]string `json:"header,omitempty"`
	Data     string              `json:"data"` // as text; invalid UTF-8 is shown quoted
	Size     int                 `json:"size"`
}

// JetStreamSource reads streams and messages from a NATS JetStream server.
type JetStreamSource struct {
	connect func() (*nats.Conn, error)
	isDLQ   func(stream string) bool

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream
}

// JetStreamOption configures a JetStreamSource.
type JetStreamOption func(*JetStreamSource)

// WithDeadLetterStreams sets which streams hold dead letters. The default: a stream whose
// name contains "DLQ" or "DEAD" in any case.
func WithDeadLetterStreams(f func(stream string) bool) JetStreamOption {
	return func(s *JetStreamSource) { s.isDLQ = f }
}

// NewJetStreamSource returns an EventSource over the JetStream of the connection connect
// makes (such as devrun's System.NATS.Connect). It connects on first use and again after
// Close.
func NewJetStreamSource(connect func() (*nats.Conn, error), opts ...JetStreamOption) *JetStreamSource {
	s := &JetStreamSource{connect: connect, isDLQ: func(name string) bool {
		u := strings.ToUpper(name)
		return strings.Contains(u, "DLQ") || strings.Contains(u, "DEAD")
	}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *JetStreamSource) jetstream() (jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.js != nil && s.nc != nil && !s.nc.IsClosed() {
		return s.js, nil
	}
	nc, err := s.connect()
	if err != nil {
		return nil, fmt.Errorf("dashboard: connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("dashboard: JetStream: %w", err)
	}
	s.nc, s.js = nc, js
	return js, nil
}

// Close closes the NATS connection.
func (s *JetStreamSource) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nil {
		s.nc.Close()
		s.nc, s.js = nil, nil
	}
}

// Streams lists the streams, their subjects, message counts and consumers.
func (s *JetStreamSource) Streams(ctx context.Context) ([]StreamInfo, error) {
	js, err := s.jetstream()
	if err != nil {
		return nil, err
	}
	lister := js.ListStreams(ctx)
	var out []StreamInfo
	for si := range lister.Info() {
		st := StreamInfo{Name: si.Config.Name, Subjects: si.Config.Subjects, Messages: si.State.Msgs,
			Bytes: si.State.Bytes, FirstSeq: si.State.FirstSeq, LastSeq: si.State.LastSeq,
			LastTime: si.State.LastTime, DeadLetter: s.isDLQ(si.Config.Name), Consumers: []ConsumerInfo{}}
		out = append(out, st)
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return nil, fmt.Errorf("dashboard: list streams: %w", err)
	}
	for i := range out {
		str, err := js.Stream(ctx, out[i].Name)
		if err != nil {
			continue // deleted meanwhile
		}
		cl := str.ListConsumers(ctx)
		for ci := range cl.Info() {
			c := ConsumerInfo{Name: ci.Name, FilterSubject: ci.Config.FilterSubject, NumPending: ci.NumPending,
				NumAckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
				Delivered: ci.Delivered.Stream, AckFloor: ci.AckFloor.Stream}
			if c.FilterSubject == "" && len(ci.Config.FilterSubjects) > 0 {
				c.FilterSubject = strings.Join(ci.Config.FilterSubjects, ",")
			}
			out[i].Consumers = append(out[i].Consumers, c)
		}
		sort.Slice(out[i].Consumers, func(a, b int) bool { return out[i].Consumers[a].Name < out[i].Consumers[b].Name })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Messages returns up to n of the stream's last messages, newest first, read one by one
// by sequence (direct get when the stream allows it); deleted messages are skipped.
func (s *JetStreamSource) Messages(ctx context.Context, stream string, n int) ([]Message, error) {
	js, err := s.jetstream()
	if err != nil {
		return nil, err
	}
	str, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("dashboard: stream %s: %w", stream, err)
	}
	info := str.CachedInfo()
	out := []Message{}
	for seq := info.State.LastSeq; seq >= max(info.State.FirstSeq, 1) && len(out) < n; seq-- {
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("dashboard: stream %s message %d: %w", stream, seq, err)
		}
		msg := Message{Stream: stream, Subject: m.Subject, Sequence: m.Sequence, Time: m.Time, Size: len(m.Data)}
		if logical := LogicalSubject(m.Subject); logical != m.Subject {
			msg.Subject, msg.Wire = logical, m.Subject
		}
		if len(m.Header) > 0 {
			msg.Header = map[string][]string(m.Header)
		}
		data := m.Data
		if len(data) > 4096 {
			data = data[:4096]
		}
		if utf8.Valid(data) {
			msg.Data = string(data)
		} else {
			msg.Data = strconv.Quote(string(data))
		}
		out = append(out, msg)
	}
	return out, nil
}

// keyToken separates a subject from its key partition, as package pubsub writes it
// ("shop.orders.placed._k.3").
const keyToken = "._k."

// LogicalSubject returns subject without the key partition pubsub appends to the subject
// of a message with a key ("shop.orders.placed._k.3" → "shop.orders.placed").
func LogicalSubject(subject string) string {
	i := strings.LastIndex(subject, keyToken)
	if i < 0 {
		return subject
	}
	if _, err := strconv.Atoi(subject[i+len(keyToken):]); err != nil {
		return subject
	}
	return subject[:i]
}

func (d *dash) eventStreams(w http.ResponseWriter, r *http.Request) {
	if d.cfg.events == nil {
		writeJSON(w, http.StatusOK, map[string]any{"configured": false, "streams": []StreamInfo{}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	streams, err := d.cfg.events.Streams(ctx)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	if streams == nil {
		streams = []StreamInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"configured": true, "streams": streams})
}

func (d *dash) eventMessages(w http.ResponseWriter, r *http.Request) {
	if d.cfg.events == nil {
		writeError(w, http.StatusNotFound, "no event source configured")
		return
	}
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n <= 0 {
		n = 50
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	msgs, err := d.cfg.events.Messages(ctx, r.PathValue("stream"), min(n, 500))
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, msgs)
}
