package devrun

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// handoverMarker is in every program that links svckit.App.Run: the name of the function
// with which it takes the sockets svckit dev hands it.
const handoverMarker = "github.com/svckit/svckit/run.InheritedListeners"

// takesSockets reports whether the program bin takes its listening sockets from its
// parent (run.InheritedListeners). It reads the file once, in pieces.
func takesSockets(bin string) (bool, error) {
	f, err := os.Open(bin)
	if err != nil {
		return false, err
	}
	defer f.Close()
	marker := []byte(handoverMarker)
	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	carry := 0 // bytes kept from the previous piece, so a marker across two is found
	for {
		n, err := io.ReadFull(r, buf[carry:])
		if bytes.Contains(buf[:carry+n], marker) {
			return true, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		carry = copy(buf, buf[carry+n-len(marker)+1:carry+n])
	}
}

// openSockets binds the instance's listeners on its addresses and keeps them as files to
// hand to its processes. On failure it binds none.
func (in *Instance) openSockets(names ...string) error {
	var files []*os.File
	for _, name := range names {
		ln, err := net.Listen("tcp", in.Addrs[name])
		if err == nil {
			var f *os.File
			f, err = ln.(*net.TCPListener).File() // a duplicate: the socket stays open
			ln.Close()
			files = append(files, f)
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return fmt.Errorf("%s: %s socket on %s: %w", in.ID, name, in.Addrs[name], err)
		}
	}
	in.sockets, in.socketNames = files, names
	return nil
}

// closeSockets closes the instance's sockets once no process of it runs.
func (in *Instance) closeSockets() {
	for _, f := range in.sockets {
		f.Close()
	}
}
