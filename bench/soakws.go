package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// soakws.go is just enough of RFC 6455 (WebSocket) for the soak: the
// upstream's echo endpoint and the client that streams through the
// gateway. Unfragmented frames of at most wsMaxPayload bytes; no
// extensions, no subprotocols. Written here rather than taken from a
// library: the module has no direct WebSocket dependency, and the soak
// needs only the handshake and a few opcodes.

// wsPath is where the bench upstream answers WebSocket upgrades.
const wsPath = "/ws"

// wsMaxPayload bounds a frame's payload; the soak's messages are short.
const wsMaxPayload = 64 << 10

// RFC 6455 §5.2 opcodes.
const (
	wsText  = 0x1
	wsClose = 0x8
	wsPing  = 0x9
	wsPong  = 0xA
)

// wsGUID is RFC 6455 §1.3's fixed string for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAccept is the Sec-WebSocket-Accept answering key (RFC 6455 §4.2.2).
func wsAccept(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// wsWriteFrame writes one final frame. Clients mask (RFC 6455 §5.3),
// servers do not.
func wsWriteFrame(w io.Writer, opcode byte, payload []byte, mask bool) error {
	if len(payload) > wsMaxPayload {
		return fmt.Errorf("websocket: %d-byte payload over the %d-byte limit", len(payload), wsMaxPayload)
	}
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|opcode)
	var maskBit byte
	if mask {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, maskBit|byte(n))
	default:
		hdr = append(hdr, maskBit|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	}
	body := payload
	if mask {
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		body = make([]byte, len(payload))
		for i, b := range payload {
			body[i] = b ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, body...))
	return err
}

// wsReadFrame reads one frame and unmasks it. wantMasked is what the peer
// must do: a server insists its client masks, a client that its server
// does not (RFC 6455 §5.1).
func wsReadFrame(r io.Reader, wantMasked bool) (opcode byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0]&0x80 == 0 || hdr[0]&0x70 != 0 {
		return 0, nil, errors.New("websocket: fragmented frame or reserved bits set")
	}
	opcode = hdr[0] & 0x0F
	masked := hdr[1]&0x80 != 0
	if masked != wantMasked {
		return 0, nil, fmt.Errorf("websocket: frame masked=%v, want %v", masked, wantMasked)
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > wsMaxPayload {
		return 0, nil, fmt.Errorf("websocket: %d-byte frame over the %d-byte limit", n, wsMaxPayload)
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return opcode, payload, nil
}

// serveWebsocket is the upstream's echo endpoint: it completes the
// handshake, echoes every text or binary message, answers pings, and
// closes when the client does.
func serveWebsocket(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
		!strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") ||
		r.Header.Get("Sec-WebSocket-Version") != "13" || key == "" {
		http.Error(w, "want a websocket upgrade", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := wsReadFrame(brw.Reader, true)
		if err != nil {
			return
		}
		switch op {
		case wsClose:
			wsWriteFrame(conn, wsClose, payload, false)
			return
		case wsPing:
			err = wsWriteFrame(conn, wsPong, payload, false)
		case wsPong:
		default:
			err = wsWriteFrame(conn, op, payload, false)
		}
		if err != nil {
			return
		}
	}
}

// wsClient is one WebSocket through the gateway.
type wsClient struct {
	conn net.Conn
	br   *bufio.Reader
}

// wsTimeout bounds the handshake and each exchange: a stream that hangs
// is a failure, not a stuck soak.
const wsTimeout = 10 * time.Second

// dialWebsocket opens base+wsPath through the gateway with cookie, and
// returns the handshake's response too: its Set-Cookie (a refresh at the
// upgrade) is the caller's to keep.
func dialWebsocket(base, cookie string) (*wsClient, *http.Response, error) {
	u, err := url.Parse(base + wsPath)
	if err != nil {
		return nil, nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, wsTimeout)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(wsTimeout))
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{
		"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Key": {key},
		"Sec-Websocket-Version": {"13"}, "Cookie": {cookie}}}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("websocket handshake: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("websocket handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		conn.Close()
		return nil, resp, fmt.Errorf("websocket handshake answered %s (Location %q), want 101 with the right Sec-WebSocket-Accept",
			resp.Status, resp.Header.Get("Location"))
	}
	return &wsClient{conn: conn, br: br}, resp, nil
}

// echo sends msg and insists on getting it back.
func (c *wsClient) echo(msg string) error {
	c.conn.SetDeadline(time.Now().Add(wsTimeout))
	if err := wsWriteFrame(c.conn, wsText, []byte(msg), true); err != nil {
		return fmt.Errorf("websocket write: %w", err)
	}
	op, got, err := wsReadFrame(c.br, false)
	if err != nil {
		return fmt.Errorf("websocket read: %w", err)
	}
	if op != wsText || string(got) != msg {
		return fmt.Errorf("websocket echo: opcode %#x %q, want text %q", op, got, msg)
	}
	return nil
}

// close runs the closing handshake (RFC 6455 §5.5.1): a close frame, the
// server's close frame back, then the connection ends.
func (c *wsClient) close() error {
	defer c.conn.Close()
	c.conn.SetDeadline(time.Now().Add(wsTimeout))
	status := binary.BigEndian.AppendUint16(nil, 1000)
	if err := wsWriteFrame(c.conn, wsClose, status, true); err != nil {
		return fmt.Errorf("websocket close: %w", err)
	}
	op, _, err := wsReadFrame(c.br, false)
	if err != nil {
		return fmt.Errorf("websocket close: %w", err)
	}
	if op != wsClose {
		return fmt.Errorf("websocket close: got opcode %#x, want a close frame", op)
	}
	return nil
}
