package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/config"
)

// env returns an Option that reads the environment from m instead of the process.
func env(m map[string]string) config.Option {
	return config.WithEnv(func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	})
}

// writeFile writes a configuration file into a fresh directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load runs a Loader with no process arguments or environment unless opts give them.
func load(t *testing.T, dst any, opts ...config.Option) (*config.Loader, error) {
	t.Helper()
	base := []config.Option{config.WithArgs(nil), config.WithEnv(nil), config.WithProgramName("testsvc")}
	l := config.NewLoader(append(base, opts...)...)
	return l, l.Load(dst)
}

func setting(t *testing.T, l *config.Loader, name string) config.Setting {
	t.Helper()
	for _, s := range l.Settings() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no setting %q in %+v", name, l.Settings())
	return config.Setting{}
}

func TestPrecedence(t *testing.T) {
	type cfg struct {
		Value string `default:"from-default"`
	}
	file := writeFile(t, "c.yaml", "value: from-file\n")
	tests := []struct {
		name       string
		file, env  bool
		flag       bool
		want       string
		wantSource config.Source
	}{
		{"default only", false, false, false, "from-default", config.SourceDefault},
		{"file over default", true, false, false, "from-file", config.SourceFile},
		{"env over file", true, true, false, "from-env", config.SourceEnv},
		{"env over default", false, true, false, "from-env", config.SourceEnv},
		{"flag over env and file", true, true, true, "from-flag", config.SourceFlag},
		{"flag over file", true, false, true, "from-flag", config.SourceFlag},
		{"flag over default", false, false, true, "from-flag", config.SourceFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []config.Option
			if tt.file {
				opts = append(opts, config.WithFile(file))
			}
			if tt.env {
				opts = append(opts, env(map[string]string{"SVC_VALUE": "from-env"}))
			}
			if tt.flag {
				opts = append(opts, config.WithArgs([]string{"-value", "from-flag"}))
			}
			opts = append(opts, config.WithEnvPrefix("SVC"))
			var c cfg
			l, err := load(t, &c, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Value != tt.want {
				t.Errorf("Value = %q, want %q", c.Value, tt.want)
			}
			if s := setting(t, l, "value"); s.Source != tt.wantSource || s.Value != tt.want {
				t.Errorf("setting = %+v, want value %q from %s", s, tt.want, tt.wantSource)
			}
		})
	}
}

func TestConfigFileChosenAtRunTime(t *testing.T) {
	type cfg struct{ Name string }
	a := writeFile(t, "a.yaml", "name: a\n")
	b := writeFile(t, "b.json", `{"name": "b"}`)
	c := writeFile(t, "c.yml", "name: c\n")
	tests := []struct {
		name string
		opts []config.Option
		want string
	}{
		{"WithFile", []config.Option{config.WithFile(a)}, "a"},
		{"prefixed env over WithFile", []config.Option{config.WithFile(a), config.WithEnvPrefix("X"), env(map[string]string{"X_CONFIG": b})}, "b"},
		{"CONFIG_FILE without prefix", []config.Option{env(map[string]string{"CONFIG_FILE": b})}, "b"},
		{"flag over env", []config.Option{env(map[string]string{"CONFIG_FILE": b}), config.WithArgs([]string{"-config=" + c})}, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got cfg
			if _, err := load(t, &got, tt.opts...); err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want {
				t.Errorf("Name = %q, want %q", got.Name, tt.want)
			}
		})
	}
}

// upper is a TextUnmarshaler with a value-receiver TextMarshaler.
type upper string

func (u *upper) UnmarshalText(b []byte) error {
	if len(b) == 0 || bytes.ContainsAny(b, " ") {
		return fmt.Errorf("bad upper %q", b)
	}
	*u = upper(strings.ToUpper(string(b)))
	return nil
}

func (u upper) MarshalText() ([]byte, error) { return []byte(strings.ToLower(string(u))), nil }

type named int

type allTypes struct {
	S     string
	B     bool
	I     int
	I8    int8
	I16   int16
	I32   int32
	I64   int64
	U     uint
	U8    uint8
	U16   uint16
	U32   uint32
	U64   uint64
	F32   float32
	F64   float64
	D     time.Duration
	Named named
	Level slog.Level
	Addr  netip.Addr
	Up    upper
	Time  time.Time
	List  []string
	Ints  []int
	Durs  []time.Duration
	Map   map[string]string
	Nums  map[string]int
	Sec   config.Secret
}

func wantAllTypes() allTypes {
	return allTypes{
		S: "hello, world", B: true, I: -1, I8: -8, I16: 16, I32: 0x20, I64: 64, U: 1, U8: 255, U16: 16,
		U32: 32, U64: 1 << 63, F32: 1.5, F64: 2.25, D: 90 * time.Second, Named: 7, Level: slog.LevelWarn,
		Addr: netip.MustParseAddr("10.0.0.1"), Up: "ABC", Time: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		List: []string{"a", "b", "c"}, Ints: []int{1, 2}, Durs: []time.Duration{time.Second, time.Minute},
		Map: map[string]string{"k": "v", "k2": "v2"}, Nums: map[string]int{"x": 1}, Sec: "pw",
	}
}

func TestTypes(t *testing.T) {
	values := map[string]string{
		"s": "hello, world", "b": "true", "i": "-1", "i8": "-8", "i16": "16", "i32": "0x20", "i64": "64",
		"u": "1", "u8": "255", "u16": "16", "u32": "32", "u64": "9223372036854775808", "f32": "1.5",
		"f64": "2.25", "d": "1m30s", "named": "7", "level": "warn", "addr": "10.0.0.1", "up": "abc",
		"time": "2024-05-06T07:08:09Z", "list": "a, b,,c", "ints": "1,2", "durs": "1s,1m",
		"map": "k=v, k2=v2", "nums": "x=1", "sec": "pw",
	}
	yamlFile := `s: "hello, world"
b: true
i: -1
i8: -8
i16: 16
i32: 0x20
i64: 64
u: 1
u8: 255
u16: 16
u32: 32
u64: 9223372036854775808
f32: 1.5
f64: 2.25
d: 1m30s
named: 7
level: warn
addr: 10.0.0.1
up: abc
time: 2024-05-06T07:08:09Z
list: [a, b, c]
ints: [1, 2]
durs: [1s, 1m]
map: {k: v, k2: v2}
nums: {x: 1}
sec: pw
`
	jsonFile := `{"s": "hello, world", "b": true, "i": -1, "i8": -8, "i16": 16, "i32": 32, "i64": 64,
	"u": 1, "u8": 255, "u16": 16, "u32": 32, "u64": 9223372036854775808, "f32": 1.5, "f64": 2.25,
	"d": "1m30s", "named": 7, "level": "WARN", "addr": "10.0.0.1", "up": "abc",
	"time": "2024-05-06T07:08:09Z", "list": ["a", "b", "c"], "ints": [1, 2], "durs": ["1s", "1m"],
	"map": {"k": "v", "k2": "v2"}, "nums": {"x": 1}, "sec": "pw"}`

	envVars := map[string]string{}
	var args []string
	for k, v := range values {
		envVars[strings.ToUpper(k)] = v
		args = append(args, "-"+k+"="+v)
	}
	tests := []struct {
		name string
		opts []config.Option
	}{
		{"environment", []config.Option{env(envVars)}},
		{"flags", []config.Option{config.WithArgs(args)}},
		{"yaml", []config.Option{config.WithFile(writeFile(t, "all.yaml", yamlFile))}},
		{"json", []config.Option{config.WithFile(writeFile(t, "all.json", jsonFile))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got allTypes
			l, err := load(t, &got, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if want := wantAllTypes(); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %#v\nwant %#v", got, want)
			}
			// Every value is shown as text that parses back to it.
			for _, s := range l.Settings() {
				if s.Name == "sec" {
					if s.Value != "******" {
						t.Errorf("secret shown as %q", s.Value)
					}
					continue
				}
				if s.Value == "" {
					t.Errorf("setting %s has no value text", s.Name)
				}
			}
		})
	}
}

func TestTypeNamesAndValueText(t *testing.T) {
	c := wantAllTypes()
	settings, err := config.Describe(&c)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"s": {"string", "hello, world"}, "b": {"bool", "true"}, "i32": {"int", "32"}, "u64": {"uint", "9223372036854775808"},
		"f32": {"float", "1.5"}, "d": {"duration", "1m30s"}, "named": {"int", "7"}, "level": {"level", "WARN"},
		"addr": {"addr", "10.0.0.1"}, "up": {"upper", "abc"}, "time": {"time", "2024-05-06T07:08:09Z"},
		"list": {"[]string", "a,b,c"}, "durs": {"[]duration", "1s,1m0s"},
		"map": {"map[string]string", "k=v,k2=v2"}, "sec": {"string", "******"},
	}
	for _, s := range settings {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		if s.Type != w[0] || s.Value != w[1] {
			t.Errorf("%s: type %q value %q, want %q %q", s.Name, s.Type, s.Value, w[0], w[1])
		}
	}
}

func TestRepeatedFlagsAddToListsAndMaps(t *testing.T) {
	var c struct {
		Peers  []string `default:"x"`
		Labels map[string]string
		Port   int
	}
	_, err := load(t, &c, config.WithArgs([]string{"-peers", "a,b", "-peers=c", "-labels", "k=v", "--labels", "k2=v2", "-port", "1", "-port", "2"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(c.Peers, want) {
		t.Errorf("Peers = %q, want %q", c.Peers, want)
	}
	if want := map[string]string{"k": "v", "k2": "v2"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("Labels = %v, want %v", c.Labels, want)
	}
	if c.Port != 2 {
		t.Errorf("Port = %d, want the last flag, 2", c.Port)
	}
}

func TestBoolFlagWithoutValue(t *testing.T) {
	var c struct {
		Debug   bool `default:"false"`
		Verbose bool `default:"true"`
	}
	if _, err := load(t, &c, config.WithArgs([]string{"-debug", "-verbose=false"})); err != nil {
		t.Fatal(err)
	}
	if !c.Debug || c.Verbose {
		t.Errorf("Debug=%v Verbose=%v, want true false", c.Debug, c.Verbose)
	}
}

func TestValueBeforeLoadIsTheDefault(t *testing.T) {
	c := struct {
		Port int
		Host string
	}{Port: 8080}
	l, err := load(t, &c, env(map[string]string{"HOST": "h"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Host != "h" {
		t.Errorf("got %+v", c)
	}
	if s := setting(t, l, "port"); s.Default != "8080" || s.Source != config.SourceDefault {
		t.Errorf("port setting = %+v", s)
	}
}

func TestEmptyEnvironmentVariableIsUnset(t *testing.T) {
	var c struct {
		Port int `default:"80"`
	}
	if _, err := load(t, &c, env(map[string]string{"PORT": ""})); err != nil {
		t.Fatal(err)
	}
	if c.Port != 80 {
		t.Errorf("Port = %d, want 80", c.Port)
	}
}

type logConfig struct {
	Level  string `default:"info"`
	Format string `default:"json"`
}

type common struct {
	Region string `default:"eu"`
}

type groupsConfig struct {
	common
	Log     logConfig
	Admin   logConfig `prefix:"audit"`
	Flat    logConfig `prefix:""  config:"-"`
	Skipped chan int  `config:"-"`
	Port    int       `env:"PORT"` // platform-defined: no prefix
	DB      struct {
		Primary struct {
			DSN string `flag:"url"`
		}
	}
	private int
}

func TestGroups(t *testing.T) {
	var c groupsConfig
	l, err := load(t, &c, config.WithEnvPrefix("APP"),
		env(map[string]string{"APP_REGION": "us", "APP_LOG_LEVEL": "debug", "APP_LOG_FORMAT": "text", "APP_DB_PRIMARY_URL": "pg://", "PORT": "9"}),
		config.WithArgs([]string{"-audit-level=warn"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "us" || c.Log.Level != "debug" || c.Log.Format != "text" || c.Admin.Level != "warn" || c.DB.Primary.DSN != "pg://" || c.Port != 9 {
		t.Errorf("got %+v", c)
	}
	var names, envs []string
	for _, s := range l.Settings() {
		names = append(names, s.Name)
		envs = append(envs, s.Env)
	}
	wantNames := []string{"region", "log-level", "log-format", "audit-level", "audit-format", "port", "db-primary-url"}
	wantEnvs := []string{"APP_REGION", "APP_LOG_LEVEL", "APP_LOG_FORMAT", "APP_AUDIT_LEVEL", "APP_AUDIT_FORMAT", "PORT", "APP_DB_PRIMARY_URL"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("names = %q, want %q", names, wantNames)
	}
	if !reflect.DeepEqual(envs, wantEnvs) {
		t.Errorf("envs = %q, want %q", envs, wantEnvs)
	}
}

func TestFiles(t *testing.T) {
	type cfg struct {
		Name string
		Log  struct {
			Level string `default:"info"`
			Tags  []string
		}
		Labels map[string]string
	}
	tests := []struct {
		name, file, content string
		want                cfg
		wantErr             string // substring; "" for success
	}{
		{name: "yaml nested", file: "c.yaml", content: "name: n\nlog:\n  level: debug\n  tags: [a, b]\nlabels: {x: y}\n",
			want: cfg{Name: "n", Log: struct {
				Level string `default:"info"`
				Tags  []string
			}{"debug", []string{"a", "b"}}, Labels: map[string]string{"x": "y"}}},
		{name: "yaml alias", file: "c.yaml", content: "name: &lvl debug\nlog:\n  level: *lvl\n",
			want: cfg{Name: "debug", Log: struct {
				Level string `default:"info"`
				Tags  []string
			}{Level: "debug"}}},
		{name: "yaml flat and underscores", file: "c.yml", content: "log-level: debug\nlog_tags: a,b\n",
			want: cfg{Log: struct {
				Level string `default:"info"`
				Tags  []string
			}{"debug", []string{"a", "b"}}}},
		{name: "json nested", file: "c.json", content: `{"name": "n", "log": {"level": "debug"}, "labels": "x=y"}`,
			want: cfg{Name: "n", Log: struct {
				Level string `default:"info"`
				Tags  []string
			}{Level: "debug"}, Labels: map[string]string{"x": "y"}}},
		{name: "null leaves the default", file: "c.yaml", content: "log:\n  level:\n",
			want: cfg{Log: struct {
				Level string `default:"info"`
				Tags  []string
			}{Level: "info"}}},
		{name: "empty yaml", file: "c.yaml", content: "",
			want: cfg{Log: struct {
				Level string `default:"info"`
				Tags  []string
			}{Level: "info"}}},
		{name: "yaml unknown key", file: "c.yaml", content: "name: n\nlog:\n  levle: debug\n",
			wantErr: `c.yaml line 3: unknown setting "log-levle"`},
		{name: "json unknown key", file: "c.json", content: `{"nmae": "n"}`,
			wantErr: `c.json: unknown setting "nmae"`},
		{name: "given twice", file: "c.yaml", content: "log-level: a\nlog:\n  level: b\n",
			wantErr: `setting "log-level" is given twice`},
		{name: "list for a single value", file: "c.yaml", content: "name: [a, b]\n",
			wantErr: `config: -name (NAME) from file `},
		{name: "bad yaml", file: "c.yaml", content: "name: [a\n", wantErr: "c.yaml: yaml:"},
		{name: "bad json", file: "c.json", content: `{"name": }`, wantErr: "c.json: invalid character"},
		{name: "top level list", file: "c.json", content: `["a"]`, wantErr: "top level must be a mapping"},
		{name: "unknown extension", file: "c.toml", content: "name = 1", wantErr: `unknown format ".toml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			var got cfg
			_, err := load(t, &got, config.WithFile(path))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error = %v, want one line containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), filepath.Base(path)) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMissingFileIsAnError(t *testing.T) {
	var c struct{ Name string }
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for _, opts := range [][]config.Option{
		{config.WithFile(missing)},
		{config.WithArgs([]string{"-config", missing})},
		{env(map[string]string{"CONFIG_FILE": missing})},
	} {
		_, err := load(t, &c, opts...)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
			t.Errorf("error = %v, want one wrapping os.ErrNotExist naming the file", err)
		}
	}
}

type validated struct {
	MinConns int `default:"1"`
	MaxConns int `default:"10"`
	Pool     pool
	Password config.Secret
}

type pool struct {
	Size int `default:"4"`
}

func (p pool) Validate() error {
	if p.Size <= 0 {
		return errors.New("size must be positive")
	}
	return nil
}

func (c *validated) Validate() error {
	if c.MaxConns < c.MinConns {
		return &config.FieldError{Field: "MaxConns", Err: errors.New("must not be below -min-conns")}
	}
	if c.Pool.Size > 100 {
		return &config.FieldError{Field: "Pool.Size", Err: errors.New("too big")}
	}
	if c.Password.Reveal() == "pw-123" {
		return &config.FieldError{Field: "Password", Err: fmt.Errorf("%q is too short", c.Password.Reveal())}
	}
	if c.Password.Reveal() == "wrong-password" {
		return fmt.Errorf("password %q is\nnot accepted", c.Password.Reveal())
	}
	return nil
}

func TestErrors(t *testing.T) {
	type required struct {
		DBDSN    string        `required:"true"`
		Token    config.Secret `required:"true" default:"x"`
		Optional string
	}
	type ints struct {
		Port    int           `env:"PORT"`
		Timeout time.Duration `default:"1s"`
		Addr    netip.Addr
		Peers   []int
		Labels  map[string]int
	}
	file := writeFile(t, "f.yaml", "\nport: high\n")
	tests := []struct {
		name string
		dst  any
		opts []config.Option
		want string // the whole message
	}{
		{"required", &required{}, nil,
			"config: -dbdsn (SVC_DBDSN) is required"},
		{"int from env", &ints{}, []config.Option{env(map[string]string{"PORT": "abc"})},
			`config: -port (PORT) from environment: invalid value "abc" for int: invalid syntax`},
		{"int out of range", &ints{}, []config.Option{config.WithArgs([]string{"-port=99999999999999999999"})},
			`config: -port (PORT) from flag: invalid value "99999999999999999999" for int: value out of range`},
		{"duration from flag", &ints{}, []config.Option{config.WithArgs([]string{"-timeout", "soon"})},
			`config: -timeout (SVC_TIMEOUT) from flag: invalid value "soon" for duration: time: invalid duration "soon"`},
		{"text from env", &ints{}, []config.Option{env(map[string]string{"SVC_ADDR": "nowhere"})},
			`config: -addr (SVC_ADDR) from environment: invalid value "nowhere" for addr: ParseAddr("nowhere"): unable to parse IP`},
		{"list item", &ints{}, []config.Option{env(map[string]string{"SVC_PEERS": "1,x"})},
			`config: -peers (SVC_PEERS) from environment: invalid value "x" for int: invalid syntax`},
		{"map entry", &ints{}, []config.Option{env(map[string]string{"SVC_LABELS": "a=1,b"})},
			`config: -labels (SVC_LABELS) from environment: invalid value "b" for map[string]int: want key=value`},
		{"file value", &ints{}, []config.Option{config.WithFile(file)},
			`config: -port (PORT) from file ` + file + ` line 2: invalid value "high" for int: invalid syntax`},
		{"field error", &validated{}, []config.Option{config.WithArgs([]string{"-max-conns", "0"})},
			`config: -max-conns (SVC_MAX_CONNS) from flag: invalid value "0": must not be below -min-conns`},
		{"field error in group", &validated{}, []config.Option{env(map[string]string{"SVC_POOL_SIZE": "101"})},
			`config: -pool-size (SVC_POOL_SIZE) from environment: invalid value "101": too big`},
		{"group validate", &validated{}, []config.Option{config.WithArgs([]string{"-pool-size=0"})},
			`config: pool: size must be positive`},
		{"multi-line validate error, secret masked", &validated{}, []config.Option{config.WithArgs([]string{"-password=wrong-password"})},
			`config: password "******" is; not accepted`},
		{"field error on a secret", &validated{}, []config.Option{config.WithArgs([]string{"-password=pw-123"})},
			`config: -password (SVC_PASSWORD) from flag: invalid value: "******" is too short`},
		{"unknown flag", &ints{}, []config.Option{config.WithArgs([]string{"-prot=1"})},
			`config: flag provided but not defined: -prot (see -help)`},
		{"flag without value", &ints{}, []config.Option{config.WithArgs([]string{"-port"})},
			`config: flag needs an argument: -port (see -help)`},
		{"positional argument", &ints{}, []config.Option{config.WithArgs([]string{"-port=1", "extra"})},
			`config: unexpected argument "extra" (see -help)`},
		{"bad default tag", &struct {
			N int `default:"many"`
		}{}, nil, `config: -n (SVC_N) from default: invalid value "many" for int: invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.dst, append([]config.Option{config.WithEnvPrefix("SVC")}, tt.opts...)...)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestParseErrorsWrapTheCause(t *testing.T) {
	var c struct{ Port int }
	_, err := load(t, &c, env(map[string]string{"PORT": "x"}))
	if _, ok := errors.AsType[*strconv.NumError](err); !ok {
		t.Errorf("error %v does not wrap the *strconv.NumError", err)
	}
	var v validated
	_, err = load(t, &v, config.WithArgs([]string{"-max-conns=0"}))
	if fe, ok := errors.AsType[*config.FieldError](err); !ok || fe.Field != "MaxConns" {
		t.Errorf("error %v does not wrap the *config.FieldError", err)
	}
}

type base struct {
	Region string
	calls  *int
}

func (b base) Validate() error {
	*b.calls++
	if b.Region == "" {
		return &config.FieldError{Field: "Region", Err: errors.New("must be set")}
	}
	return nil
}

// TestEmbeddedValidateIsPromoted checks that an embedded struct's Validate runs once, as
// its parent's method, and that its FieldError resolves promoted fields.
func TestEmbeddedValidateIsPromoted(t *testing.T) {
	var c struct {
		base
		Port int
	}
	calls := 0
	c.calls = &calls
	_, err := load(t, &c, config.WithArgs([]string{"-port=1"}))
	if calls != 1 {
		t.Errorf("Validate called %d times, want 1", calls)
	}
	if want := "config: -region (REGION) from default: invalid value \"\": must be set"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// RegionConfig and ZoneConfig are exported, as the embedded settings structs of a library
// are: reflection cannot call the methods of an unexported embedded type.
type RegionConfig struct{ Region string }

func (c *RegionConfig) Validate() error {
	if c.Region == "" {
		return &config.FieldError{Field: "Region", Err: errors.New("must be set")}
	}
	return nil
}

type ZoneConfig struct{ Zone string }

func (c *ZoneConfig) Validate() error {
	if c.Zone == "" {
		return &config.FieldError{Field: "Zone", Err: errors.New("must be set")}
	}
	return nil
}

// TestAmbiguousEmbeddedValidateRuns checks that two embedded structs with a Validate each
// (an ambiguous selector: the parent has none) are both validated, each as its own group.
func TestAmbiguousEmbeddedValidateRuns(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-region=eu"}, `config: -zone (ZONE) from default: invalid value "": must be set`},
		{[]string{"-zone=a"}, `config: -region (REGION) from default: invalid value "": must be set`},
		{[]string{"-zone=a", "-region=eu"}, ""},
	}
	for _, tt := range tests {
		var c struct {
			RegionConfig
			ZoneConfig
		}
		_, err := load(t, &c, config.WithArgs(tt.args))
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("%v: error = %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestZeroSecretsAreNotMaskedInErrors(t *testing.T) {
	var c struct {
		PIN  int `secret:"true"`
		Port int
	}
	_, err := load(t, &c, env(map[string]string{"PORT": "10x"}))
	if want := `config: -port (PORT) from environment: invalid value "10x" for int: invalid syntax`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestProgrammingErrors(t *testing.T) {
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"not a pointer", struct{}{}, "config: Load needs a non-nil pointer to a struct, not struct {}"},
		{"nil pointer", (*struct{})(nil), "config: Load needs a non-nil pointer to a struct"},
		{"unsupported type", &struct{ Ch chan int }{}, `config: field Ch: unsupported type chan int`},
		{"unsupported nested", &struct{ G struct{ F func() } }{}, `config: field G.F: unsupported type func()`},
		{"pointer field", &struct{ P *int }{}, `config: field P: unsupported type *int`},
		{"duplicate name", &struct {
			A string `flag:"x"`
			B string `flag:"x"`
		}{}, `config: fields A and B have the same setting name "x"`},
		{"duplicate env", &struct {
			A string `env:"X"`
			B string `env:"X"`
		}{}, `config: field B: environment variable X is also used by field A`},
		{"reserved name", &struct{ Config string }{}, `config: field Config: setting name "config" is reserved`},
		{"bad name", &struct {
			A string `flag:"a=b"`
		}{}, `config: field A: setting name "a=b" must not contain =`},
		{"bad secret tag", &struct {
			A string `secret:"yes please"`
		}{}, `config: field A: invalid secret tag "yes please"`},
		{"flag tag on a group", &struct {
			G struct{ A string } `flag:"g"`
		}{}, `config: field G: a struct field is a group of settings and takes no flag tag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.dst)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to begin %q", err, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	type cfg struct {
		HTTPAddr string        `default:":8080" help:"HTTP listen address"`
		Timeout  time.Duration `default:"5s" help:"request timeout"`
		Peers    []string      `help:"peer addresses"`
		DBDSN    string        `required:"true" help:"database DSN"`
		APIKey   config.Secret `default:"default-secret-value" help:"API key"`
		Token    string        `secret:"true" default:"other-secret-value"`
		Log      struct {
			Level slog.Level `default:"info"`
		}
	}
	for _, arg := range []string{"-help", "-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			c := cfg{Peers: []string{"a", "b"}}
			_, err := load(t, &c, config.WithArgs([]string{arg}), config.WithEnvPrefix("ADDSVC"),
				config.WithUsageOutput(&out), config.WithFile("/etc/addsvc.yaml"))
			if err != config.ErrHelp || !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("error = %v, want ErrHelp", err)
			}
			help := out.String()
			for _, want := range []string{
				"Usage of testsvc:",
				"-config file", "ADDSVC_CONFIG", `(default "/etc/addsvc.yaml")`,
				"-http-addr string", "ADDSVC_HTTP_ADDR", `HTTP listen address (default ":8080")`,
				"-timeout duration", "ADDSVC_TIMEOUT", "(default 5s)",
				"-peers []string", "ADDSVC_PEERS", "(default a,b)",
				"-dbdsn string", "ADDSVC_DBDSN", "database DSN (required)",
				"-api-key string", "ADDSVC_API_KEY", "API key (default ******; secret)",
				"-token string", "ADDSVC_TOKEN",
				"-log-level level", "ADDSVC_LOG_LEVEL", "(default info)",
			} {
				if !strings.Contains(help, want) {
					t.Errorf("help does not contain %q:\n%s", want, help)
				}
			}
			for _, secret := range []string{"default-secret-value", "other-secret-value"} {
				if strings.Contains(help, secret) {
					t.Errorf("help shows a secret:\n%s", help)
				}
			}
		})
	}
}

func TestHelpComesBeforeOtherErrors(t *testing.T) {
	var c struct {
		Port int `required:"true"`
	}
	var out bytes.Buffer
	_, err := load(t, &c, config.WithArgs([]string{"-h"}), env(map[string]string{"PORT": "bad"}), config.WithUsageOutput(&out))
	if err != config.ErrHelp || out.Len() == 0 {
		t.Errorf("error = %v, usage %q", err, out.String())
	}
}

// TestSecretsNeverShown loads a secret from every source and fails in every way, and checks
// that the secret appears nowhere.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "s3cr3t-hunter2"
	type cfg struct {
		Password config.Secret
		Key      string `secret:"true"`
		PIN      int    `secret:"true"`
		Keys     []config.Secret
		Port     int
		Check    string
	}
	file := writeFile(t, "s.yaml", "password: "+secret+"\nkeys: ["+secret+"]\n")
	tests := []struct {
		name    string
		opts    []config.Option
		wantErr string
	}{
		{"file, success", []config.Option{config.WithFile(file)}, ""},
		{"env, success", []config.Option{env(map[string]string{"KEY": secret})}, ""},
		{"flag, success", []config.Option{config.WithArgs([]string{"-password", secret, "-keys", secret + ",x"})}, ""},
		{"secret int parse error", []config.Option{config.WithArgs([]string{"-pin", secret})},
			"config: -pin (PIN) from flag: invalid value for int: invalid syntax"},
		{"other error after secret loaded", []config.Option{config.WithFile(file), env(map[string]string{"PORT": "x"})},
			`config: -port (PORT) from environment: invalid value "x" for int: invalid syntax`},
		{"secret in another setting's error", []config.Option{env(map[string]string{"KEY": secret, "PORT": secret})},
			`config: -port (PORT) from environment: invalid value "******" for int: invalid syntax`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c cfg
			var usage bytes.Buffer
			l, err := load(t, &c, append(tt.opts, config.WithUsageOutput(&usage))...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				for e := err; e != nil; e = errors.Unwrap(e) {
					if strings.Contains(e.Error(), secret) {
						t.Errorf("wrapped error shows the secret: %v", e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var shown bytes.Buffer
			// Fields of type Secret hide themselves; other secret fields are hidden by this package.
			fmt.Fprintf(&shown, "%v %+v %#v %s %q\n", c.Password, c.Keys, c.Keys, c.Password, c.Password)
			for _, s := range l.Settings() {
				fmt.Fprintf(&shown, "%+v\n", s)
			}
			d, err := config.Describe(c)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&shown, "%+v\n", d)
			slog.New(slog.NewJSONHandler(&shown, nil)).Info("config", "password", c.Password, "keys", c.Keys)
			slog.New(slog.NewTextHandler(&shown, nil)).Info("config", "password", c.Password)
			j, _ := json.Marshal(struct {
				P config.Secret
				K []config.Secret
			}{c.Password, c.Keys})
			shown.Write(j)
			if strings.Contains(shown.String(), secret) {
				t.Errorf("secret shown:\n%s", shown.String())
			}
			if !strings.Contains(shown.String(), "******") {
				t.Errorf("no masked value shown:\n%s", shown.String())
			}
		})
	}
}

func TestSecret(t *testing.T) {
	s := config.Secret("pw")
	if got := fmt.Sprintf("%v|%s|%q|%#v|%x", s, s, s, s, s); s.Reveal() != "pw" || got != `******|******|"******"|config.Secret("******")|2a2a2a2a2a2a` {
		t.Errorf("Reveal = %q, formatting shows %s", s.Reveal(), got)
	}
	if config.Secret("").String() != "" {
		t.Error("an empty secret is not shown as empty")
	}
	y, err := config.Secret("pw").MarshalYAML()
	if err != nil || y != "******" {
		t.Errorf("MarshalYAML = %v, %v", y, err)
	}
}

func TestDescribe(t *testing.T) {
	type cfg struct {
		Port   int           `default:"80" help:"port"`
		Token  config.Secret `required:"true"`
		Unused string
	}
	got, err := config.Describe(&cfg{Port: 9, Token: "t"}, config.WithEnvPrefix("X"))
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Setting{
		{Name: "port", Env: "X_PORT", Type: "int", Default: "80", Help: "port", Value: "9"},
		{Name: "token", Env: "X_TOKEN", Type: "string", Secret: true, Required: true, Value: "******"},
		{Name: "unused", Env: "X_UNUSED", Type: "string"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if _, err := config.Describe(42); err == nil {
		t.Error("Describe(42) did not fail")
	}
}

func TestLoaderSettingsAreACopy(t *testing.T) {
	var c struct{ A string }
	l, err := load(t, &c)
	if err != nil {
		t.Fatal(err)
	}
	l.Settings()[0].Name = "changed"
	if l.Settings()[0].Name != "a" {
		t.Error("Settings returned the Loader's own slice")
	}
}

func BenchmarkLoad(b *testing.B) {
	env := mapEnv{"ADDSVC_DB_DSN": "postgres://db/app", "ADDSVC_PEERS": "a,b,c"}.lookup
	b.ReportAllocs()
	for b.Loop() {
		var cfg ServiceConfig
		if err := config.Load(&cfg, config.WithEnvPrefix("ADDSVC"), config.WithArgs([]string{"-timeout=1s"}), config.WithEnv(env)); err != nil {
			b.Fatal(err)
		}
	}
}
