package config

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
)

// writeUsage prints the -help text: one line per setting with flag, type, environment
// variable and help, default and attributes.
func (sc *schema) writeUsage(w io.Writer, program, file string) {
	fmt.Fprintf(w, "Usage of %s:\n", program)
	fmt.Fprintf(w, "Each setting is taken from, in increasing precedence: its default, the configuration file, its environment variable, its flag.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  FLAG\tENVIRONMENT\tDESCRIPTION\n")
	cfg := "configuration file (.yaml, .yml or .json)"
	if file != "" {
		cfg += " (default " + strconv.Quote(file) + ")"
	}
	fmt.Fprintf(tw, "  -%s file\t%s\t%s\n", configFlag, sc.configEnv, cfg)
	for _, s := range sc.settings {
		var attrs []string
		if s.defText != "" {
			d := s.mask(s.defText)
			if !s.secret && s.shape == scalar && s.elem.Kind() == reflect.String {
				d = strconv.Quote(d)
			}
			attrs = append(attrs, "default "+d)
		}
		if s.required {
			attrs = append(attrs, "required")
		}
		if s.secret {
			attrs = append(attrs, "secret")
		}
		desc := s.help
		if len(attrs) > 0 {
			desc = strings.TrimSpace(desc + " (" + strings.Join(attrs, "; ") + ")")
		}
		fmt.Fprintf(tw, "  -%s %s\t%s\t%s\n", s.name, s.typeName, s.env, oneLine(desc))
	}
	tw.Flush()
}
