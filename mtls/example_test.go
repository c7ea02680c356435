package mtls_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/svckit/svckit/mtls"
)

func ExampleEnsureCA() {
	dir, _ := os.MkdirTemp("", "certs")
	defer os.RemoveAll(dir)

	// `svckit certs init DIR`: a CA, created once, kept afterwards.
	ca, created, err := mtls.EnsureCA(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created, ca.TrustDomain)
	_, created, _ = mtls.EnsureCA(dir)
	fmt.Println(created)

	// `svckit certs issue -dir DIR orders`: orders.crt and orders.key.
	is, err := ca.IssueFiles(dir, "orders")
	if err != nil {
		log.Fatal(err)
	}
	id, _ := mtls.IdentityOf(is.Cert)
	fmt.Println(id.URI, is.Cert.DNSNames, is.Cert.IPAddresses)
	// Output:
	// true svckit.local
	// false
	// spiffe://svckit.local/svc/orders [orders localhost] [127.0.0.1 ::1]
}

func ExampleNewSource() {
	dir, _ := os.MkdirTemp("", "certs")
	defer os.RemoveAll(dir)
	ca, _, _ := mtls.EnsureCA(dir)
	for _, svc := range []string{"orders", "gateway"} {
		if _, err := ca.IssueFiles(dir, svc); err != nil {
			log.Fatal(err)
		}
	}
	source := func(svc string) *mtls.Source {
		src, err := mtls.NewSource(filepath.Join(dir, svc+".crt"), filepath.Join(dir, svc+".key"), filepath.Join(dir, "ca.crt"))
		if err != nil {
			log.Fatal(err)
		}
		return src
	}
	orders, gateway := source("orders"), source("gateway")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go orders.Run(ctx) // picks up rewritten files

	// The orders service: its HTTP server requires a client certificate of the CA, and
	// its handlers see who called.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := mtls.IdentityOf(r.TLS.VerifiedChains[0][0])
		fmt.Fprintf(w, "hello %s", id.Service)
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, orders.ServerTLS()))
	defer srv.Close()

	// The gateway calls it with its own certificate and checks that it talks to orders.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: gateway.ClientTLS("orders")}}
	resp, err := hc.Get("https://" + ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(string(b))

	// Without a certificate the handshake fails.
	_, err = http.Get("https://" + ln.Addr().String())
	fmt.Println(err != nil)
	// Output:
	// hello gateway
	// true
}

func ExamplePeerFromContext() {
	// In an endpoint served over HTTP or gRPC under mTLS, the caller's identity comes
	// from its verified certificate; tests and in-process calls set it with WithPeer.
	id, _ := mtls.NewIdentity("svckit.local", "gateway")
	ctx := mtls.WithPeer(context.Background(), id)

	if peer, ok := mtls.PeerFromContext(ctx); ok {
		fmt.Println(peer.Service, peer.URI)
	}
	_, ok := mtls.PeerFromContext(context.Background())
	fmt.Println(ok)
	// Output:
	// gateway spiffe://svckit.local/svc/gateway
	// false
}
