// Package bench50 is a 50-method service for measuring generation time.
package bench50

import (
	"context"
	"iter"
	"time"
)

// Record is a struct used by many methods.
type Record struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Tags    []string          `json:"tags"`
	Attrs   map[string]string `json:"attrs"`
	Created time.Time         `json:"created"`
	Score   *float64          `json:"score"`
}

// Service has 50 methods.
type Service interface {
	// Get0 returns a record.
	//svckit:http GET /records0/{id}
	Get0(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put1 stores a record.
	Put1(ctx context.Context, r Record) (Record, error)
	// Sum2 adds.
	Sum2(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List3 streams records.
	List3(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag4 tags records.
	Tag4(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get5 returns a record.
	//svckit:http GET /records5/{id}
	Get5(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put6 stores a record.
	Put6(ctx context.Context, r Record) (Record, error)
	// Sum7 adds.
	Sum7(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List8 streams records.
	List8(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag9 tags records.
	Tag9(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get10 returns a record.
	//svckit:http GET /records10/{id}
	Get10(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put11 stores a record.
	Put11(ctx context.Context, r Record) (Record, error)
	// Sum12 adds.
	Sum12(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List13 streams records.
	List13(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag14 tags records.
	Tag14(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get15 returns a record.
	//svckit:http GET /records15/{id}
	Get15(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put16 stores a record.
	Put16(ctx context.Context, r Record) (Record, error)
	// Sum17 adds.
	Sum17(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List18 streams records.
	List18(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag19 tags records.
	Tag19(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get20 returns a record.
	//svckit:http GET /records20/{id}
	Get20(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put21 stores a record.
	Put21(ctx context.Context, r Record) (Record, error)
	// Sum22 adds.
	Sum22(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List23 streams records.
	List23(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag24 tags records.
	Tag24(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get25 returns a record.
	//svckit:http GET /records25/{id}
	Get25(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put26 stores a record.
	Put26(ctx context.Context, r Record) (Record, error)
	// Sum27 adds.
	Sum27(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List28 streams records.
	List28(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag29 tags records.
	Tag29(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get30 returns a record.
	//svckit:http GET /records30/{id}
	Get30(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put31 stores a record.
	Put31(ctx context.Context, r Record) (Record, error)
	// Sum32 adds.
	Sum32(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List33 streams records.
	List33(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag34 tags records.
	Tag34(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get35 returns a record.
	//svckit:http GET /records35/{id}
	Get35(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put36 stores a record.
	Put36(ctx context.Context, r Record) (Record, error)
	// Sum37 adds.
	Sum37(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List38 streams records.
	List38(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag39 tags records.
	Tag39(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get40 returns a record.
	//svckit:http GET /records40/{id}
	Get40(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put41 stores a record.
	Put41(ctx context.Context, r Record) (Record, error)
	// Sum42 adds.
	Sum42(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List43 streams records.
	List43(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag44 tags records.
	Tag44(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
	// Get45 returns a record.
	//svckit:http GET /records45/{id}
	Get45(ctx context.Context, id string, verbose bool) (*Record, error)
	// Put46 stores a record.
	Put46(ctx context.Context, r Record) (Record, error)
	// Sum47 adds.
	Sum47(ctx context.Context, a, b int64, c []int32) (sum int64, n int, err error)
	// List48 streams records.
	List48(ctx context.Context, prefix string, limit int) (iter.Seq2[Record, error], error)
	// Tag49 tags records.
	Tag49(ctx context.Context, ids []string, tags map[string]string, at time.Time, ttl time.Duration) error
}
