package gen

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/internal/gen/testdata/golden/aliases"
	"github.com/svckit/svckit/internal/gen/testdata/golden/routes"
	"github.com/svckit/svckit/internal/gen/testdata/golden/shapes"
	"github.com/svckit/svckit/internal/gen/testdata/shared"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// The golden corpus is compiled code: these tests serve three of its packages in-process
// and call them through their generated HTTP and gRPC clients, so that every supported
// shape — nested, optional, repeated, map, enum, time, duration, bytes, embedded, alias
// and generic fields, path and query parameters — goes over both wires and comes back
// equal to what the implementation returned.

// serveGolden serves one golden package over HTTP and gRPC on loopback and returns the
// base URL and a connection to the gRPC server.
func serveGolden(t *testing.T, name, grpcService string, registerHTTP func(*shttp.Server), registerGRPC func(*sgrpc.Server)) (string, *grpc.ClientConn) {
	t.Helper()
	hs := shttp.NewServer(name)
	registerHTTP(hs)
	web := httptest.NewServer(hs)
	t.Cleanup(web.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := sgrpc.NewServer(grpcService)
	registerGRPC(gs)
	g := grpc.NewServer()
	gs.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return web.URL, cc
}

var rtTime = time.Date(2026, 11, 27, 5, 6, 7, 890, time.UTC)

// rtProfile has every field of shapes.Profile set, a friend that has only some, and
// values that need care on the wire (a zero-length avatar is not nil, a negative duration).
func rtProfile(id string) shapes.Profile {
	nick, age, ratio := "bo", 42, 0.25
	until := rtTime.Add(time.Hour)
	friend := &shapes.Profile{Base: shapes.Base{ID: "f", Created: rtTime}, Name: "Friend", Tags: []string{"x"}}
	return shapes.Profile{
		Base: shapes.Base{ID: id, Created: rtTime},
		Name: "Bo", Nick: &nick, Age: &age, Tags: []string{"a", "b"},
		Labels: map[string]string{"k": "v"}, Scores: map[shapes.Color]int64{shapes.Red: 3, shapes.Green: -1},
		Color: shapes.Green, Level: shared.LevelHigh,
		Home:    shared.Address{Street: "Main 1", City: "Town", Geo: &shared.Point{Lat: 1.5, Lng: -2.25}},
		Work:    &shared.Address{Street: "Side 2", City: "City"},
		Others:  []shared.Address{{Street: "O", City: "P"}},
		Friends: []*shapes.Profile{friend},
		ByName:  map[string]*shared.Point{"here": {Lat: 3, Lng: 4}},
		Avatar:  []byte{0, 1, 2, 255}, Seen: rtTime.Add(-time.Minute), Until: &until,
		TTL: -90 * time.Second, Timeouts: []time.Duration{time.Millisecond, 2 * time.Hour},
		Colors: []shapes.Color{shapes.Red, shapes.Green}, Ratio: &ratio, NoTag: "plain",
	}
}

type shapesEcho struct{}

func (shapesEcho) Get(_ context.Context, req shapes.GetRequest) (*shapes.Profile, error) {
	p := rtProfile(req.ID)
	return &p, nil
}

func (shapesEcho) Put(_ context.Context, p *shapes.Profile) (shapes.Profile, error) { return *p, nil }

func (shapesEcho) List(_ context.Context, limit int, after string) (shared.Page[shapes.Profile], error) {
	var page shared.Page[shapes.Profile]
	for i := range limit {
		page.Items = append(page.Items, rtProfile(fmt.Sprint(i)))
	}
	page.Next = after + "+"
	return page, nil
}

func (shapesEcho) Colors(_ context.Context, c []shapes.Color, m map[string]shared.Level) (map[shapes.Color]int64, error) {
	out := map[shapes.Color]int64{}
	for _, x := range c {
		out[x]++
	}
	for k, v := range m {
		out[shapes.Color(k)] += int64(v) * 100
	}
	return out, nil
}

func (shapesEcho) Where(_ context.Context, id string) (shared.Address, error) {
	return shared.Address{Street: id, City: "C", Geo: &shared.Point{Lat: -1, Lng: 1}}, nil
}

func TestRoundTripShapes(t *testing.T) {
	e := shapes.MakeEndpoints(shapesEcho{})
	base, cc := serveGolden(t, "shapes", shapes.GRPCService,
		func(s *shttp.Server) { shapes.RegisterHTTP(s, e) }, func(s *sgrpc.Server) { shapes.RegisterGRPC(s, e) })
	he, err := shapes.NewHTTPClient(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var local shapes.Service = shapesEcho{}
	for name, c := range map[string]shapes.Service{"http": shapes.NewClient(he), "grpc": shapes.NewClient(shapes.NewGRPCClient(cc))} {
		check := func(method string, got, want any, err error) {
			t.Helper()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s:\n got %+v, %v\nwant %+v", name, method, got, err, want)
			}
		}
		got, err := c.Get(ctx, shapes.GetRequest{ID: "p1"})
		want, _ := local.Get(ctx, shapes.GetRequest{ID: "p1"})
		check("Get", got, want, err)
		in := rtProfile("p2")
		put, err := c.Put(ctx, &in)
		check("Put", put, in, err)
		page, err := c.List(ctx, 2, "cursor")
		wantPage, _ := local.List(ctx, 2, "cursor")
		check("List", page, wantPage, err)
		colors, err := c.Colors(ctx, []shapes.Color{shapes.Red, shapes.Red, shapes.Green}, map[string]shared.Level{"blue": shared.LevelLow})
		check("Colors", colors, map[shapes.Color]int64{shapes.Red: 2, shapes.Green: 1, "blue": 100}, err)
		addr, err := c.Where(ctx, "w")
		wantAddr, _ := local.Where(ctx, "w")
		check("Where", addr, wantAddr, err)
	}
}

type aliasesEcho struct{}

func rtBook(title string) aliases.Book {
	return aliases.Book{
		Title: title, Home: aliases.Addr{Street: "S", City: "C"}, Level: shared.LevelLow,
		Chapters: shared.Page[string]{Items: []string{"one", "two"}, Next: "three"},
		Homes:    &shared.Page[aliases.Addr]{Items: []aliases.Addr{{Street: "a", City: "b", Geo: &shared.Point{Lat: 1}}}},
		Pairs:    []aliases.Pair[string, int64]{{Key: "k", Value: -7}},
		Points:   map[string]aliases.Pair[string, shared.Point]{"p": {Key: "q", Value: shared.Point{Lat: 2, Lng: 3}}},
	}
}

func (aliasesEcho) Find(_ context.Context, home aliases.Addr, level aliases.Lvl) ([]aliases.Book, error) {
	b := rtBook(home.City)
	b.Home, b.Level = home, level
	return []aliases.Book{b, rtBook("second")}, nil
}

func (aliasesEcho) Shelve(_ context.Context, p aliases.Pair[string, aliases.Book]) (shared.Page[aliases.Book], error) {
	return shared.Page[aliases.Book]{Items: []aliases.Book{p.Value}, Next: p.Key}, nil
}

func (aliasesEcho) Shelf(_ context.Context, name string) (*aliases.Shelf, error) {
	return &aliases.Shelf{Items: []aliases.Book{rtBook(name)}}, nil
}

func TestRoundTripAliasesAndGenerics(t *testing.T) {
	e := aliases.MakeEndpoints(aliasesEcho{})
	base, cc := serveGolden(t, "aliases", aliases.GRPCService,
		func(s *shttp.Server) { aliases.RegisterHTTP(s, e) }, func(s *sgrpc.Server) { aliases.RegisterGRPC(s, e) })
	he, err := aliases.NewHTTPClient(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var local aliases.Service = aliasesEcho{}
	for name, c := range map[string]aliases.Service{"http": aliases.NewClient(he), "grpc": aliases.NewClient(aliases.NewGRPCClient(cc))} {
		check := func(method string, got, want any, err error) {
			t.Helper()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s:\n got %+v, %v\nwant %+v", name, method, got, err, want)
			}
		}
		home := aliases.Addr{Street: "H", City: "Here", Geo: &shared.Point{Lat: 9, Lng: 8}}
		books, err := c.Find(ctx, home, shared.LevelHigh)
		want, _ := local.Find(ctx, home, shared.LevelHigh)
		check("Find", books, want, err)
		pair := aliases.Pair[string, aliases.Book]{Key: "key", Value: rtBook("shelved")}
		page, err := c.Shelve(ctx, pair)
		wantPage, _ := local.Shelve(ctx, pair)
		check("Shelve", page, wantPage, err)
		shelf, err := c.Shelf(ctx, "top")
		wantShelf, _ := local.Shelf(ctx, "top")
		check("Shelf", shelf, wantShelf, err)
	}
}

// profilesEcho answers with what it received, so that the test sees which path and query
// parameters arrived.
type profilesEcho struct{}

func (profilesEcho) GetProfile(_ context.Context, id string) (string, error) {
	return "profile " + id, nil
}

func (profilesEcho) ListProfiles(_ context.Context, limit int, tags []string, active *bool, since time.Time, color routes.Color, wait time.Duration) ([]string, error) {
	a := "nil"
	if active != nil {
		a = fmt.Sprint(*active)
	}
	return []string{fmt.Sprint(limit), strings.Join(tags, "|"), a, since.Format(time.RFC3339Nano), string(color), wait.String()}, nil
}

func (profilesEcho) DeleteProfile(_ context.Context, id string, hard bool) error {
	if !hard {
		return fmt.Errorf("delete %s: hard=false arrived", id)
	}
	return nil
}

func (profilesEcho) Rename(_ context.Context, id string, name string) error {
	if id != "p/1" || name != "new name" {
		return fmt.Errorf("rename: id %q name %q arrived", id, name)
	}
	return nil
}

func (profilesEcho) AddMember(_ context.Context, org string, n uint32, user string) error {
	if org != "acme" || n != 4000000000 || user != "u?1" {
		return fmt.Errorf("add member: org %q n %d user %q arrived", org, n, user)
	}
	return nil
}

func (profilesEcho) File(_ context.Context, path string) ([]byte, error) { return []byte(path), nil }

func (profilesEcho) Internal(context.Context) error { return nil }

func (profilesEcho) Touch(context.Context, string) error { return nil }

func (profilesEcho) Thing(_ context.Context, req routes.ThingRequest) (routes.Thing, error) {
	return routes.Thing{ID: req.ID, Name: fmt.Sprintf("verbose=%t", req.Verbose)}, nil
}

// TestRoundTripRoutes calls the //svckit:http routes of the routes package through the
// generated clients: path wildcards (escaped, numeric, the rest of the path) and query
// parameters of every kind (int, repeated string, optional bool, time, enum, duration)
// arrive over HTTP as they do over gRPC.
func TestRoundTripRoutes(t *testing.T) {
	e := routes.MakeProfilesEndpoints(profilesEcho{})
	base, cc := serveGolden(t, "routes", routes.ProfilesGRPCService,
		func(s *shttp.Server) { routes.RegisterProfilesHTTP(s, e) }, func(s *sgrpc.Server) { routes.RegisterProfilesGRPC(s, e) })
	he, err := routes.NewProfilesHTTPClient(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var local routes.Profiles = profilesEcho{}
	active := false
	since := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))
	for name, c := range map[string]routes.Profiles{"http": routes.NewProfilesClient(he), "grpc": routes.NewProfilesClient(routes.NewProfilesGRPCClient(cc))} {
		check := func(method string, got, want any, err error) {
			t.Helper()
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s:\n got %#v, %v\nwant %#v", name, method, got, err, want)
			}
		}
		got, err := c.GetProfile(ctx, "a b/c")
		check("GetProfile", got, "profile a b/c", err)
		list, err := c.ListProfiles(ctx, 7, []string{"x", "y z"}, &active, since, routes.Blue, 1500*time.Millisecond)
		want, _ := local.ListProfiles(ctx, 7, []string{"x", "y z"}, &active, since, routes.Blue, 1500*time.Millisecond)
		// The time arrives as the same instant; over gRPC it is in UTC.
		want[3] = since.UTC().Format(time.RFC3339Nano)
		if name == "http" {
			want[3] = since.Format(time.RFC3339Nano)
		}
		check("ListProfiles", list, want, err)
		list, err = c.ListProfiles(ctx, 0, nil, nil, time.Time{}, "", 0)
		want, _ = local.ListProfiles(ctx, 0, nil, nil, time.Time{}, "", 0)
		check("ListProfiles (zero values)", list, want, err)
		check("DeleteProfile", nil, nil, c.DeleteProfile(ctx, "gone", true))
		check("Rename", nil, nil, c.Rename(ctx, "p/1", "new name"))
		check("AddMember", nil, nil, c.AddMember(ctx, "acme", 4000000000, "u?1"))
		file, err := c.File(ctx, "dir/sub/f.txt")
		check("File", file, []byte("dir/sub/f.txt"), err)
		thing, err := c.Thing(ctx, routes.ThingRequest{ID: 12, Verbose: true})
		check("Thing", thing, routes.Thing{ID: 12, Name: "verbose=true"}, err)
		check("Touch", nil, nil, c.Touch(ctx, "t"))
	}
}
