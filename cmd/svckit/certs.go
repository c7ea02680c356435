package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/svckit/svckit/mtls"
)

// runCerts is `svckit certs init|issue`: a development CA and service certificates for
// mTLS between services (package mtls).
func runCerts(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, `usage:
  svckit certs init [-trust-domain D] [-validity D] DIR
      create a development CA in DIR (ca.crt, ca.key); nothing happens if DIR has one
  svckit certs issue -dir DIR [-out DIR] [-validity D] [-dns NAMES] [-ip IPS] NAME...
      issue a certificate per service NAME with the CA in DIR: NAME.crt and NAME.key,
      identity spiffe://TRUST-DOMAIN/svc/NAME; a running service picks a re-issued one up

Services use them with -tls-cert NAME.crt -tls-key NAME.key -tls-ca ca.crt.
`)
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "init":
		return certsInit(args[1:], stdout, stderr)
	case "issue":
		return certsIssue(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage()
		return 0
	default:
		fmt.Fprintf(stderr, "svckit certs: unknown subcommand %q\n", args[0])
		usage()
		return 2
	}
}

func certsInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("svckit certs init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	td := fs.String("trust-domain", mtls.DefaultTrustDomain, "trust domain of the identities the CA issues")
	validity := fs.Duration("validity", mtls.DefaultCAValidity, "how long the CA is valid")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: svckit certs init [-trust-domain D] [-validity D] DIR")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dir := fs.Arg(0)
	ca, created, err := mtls.EnsureCA(dir, mtls.WithCATrustDomain(*td), mtls.WithCAValidity(*validity))
	if err != nil {
		fmt.Fprintln(stderr, "svckit certs init:", err)
		return 1
	}
	what := "created"
	if !created {
		what = "kept the existing"
	}
	fmt.Fprintf(stdout, "%s CA %s (trust domain %s, valid until %s); its key %s is mode 0600\n",
		what, filepath.Join(dir, mtls.CACertFile), ca.TrustDomain, ca.Cert.NotAfter.Format(time.DateOnly), filepath.Join(dir, mtls.CAKeyFile))
	return 0
}

func certsIssue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("svckit certs issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the CA's directory, as made by svckit certs init (required)")
	out := fs.String("out", "", "where the certificates go (default: -dir)")
	validity := fs.Duration("validity", mtls.DefaultCertValidity, "how long the certificates are valid")
	dns := fs.String("dns", "", "more DNS names, comma-separated, beside NAME and localhost")
	ips := fs.String("ip", "", "more IP addresses, comma-separated, beside 127.0.0.1 and ::1")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: svckit certs issue -dir DIR [-out DIR] [-validity D] [-dns NAMES] [-ip IPS] NAME...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	opts := []mtls.IssueOption{mtls.WithValidity(*validity)}
	for n := range strings.SplitSeq(*dns, ",") {
		if n = strings.TrimSpace(n); n != "" {
			opts = append(opts, mtls.WithDNSNames(n))
		}
	}
	for s := range strings.SplitSeq(*ips, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			fmt.Fprintf(stderr, "svckit certs issue: -ip: %q is not an IP address\n", s)
			return 2
		}
		opts = append(opts, mtls.WithIPs(ip))
	}
	ca, err := mtls.LoadCA(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "svckit certs issue: %v (create the CA with: svckit certs init %s)\n", err, *dir)
		return 1
	}
	if *out == "" {
		*out = *dir
	}
	for _, name := range fs.Args() {
		is, err := ca.IssueFiles(*out, name, opts...)
		if err != nil {
			fmt.Fprintln(stderr, "svckit certs issue:", err)
			return 1
		}
		id, _ := mtls.IdentityOf(is.Cert)
		fmt.Fprintf(stdout, "%s %s: %s, serial %s, valid until %s\n",
			filepath.Join(*out, mtls.CertFile(name)), filepath.Join(*out, mtls.KeyFile(name)),
			id.URI, is.Cert.SerialNumber.Text(16), is.Cert.NotAfter.Format(time.RFC3339))
	}
	return 0
}
