package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis/portcullis/proxy"
)

// runSessions is `portcullis sessions list|revoke`: the command-line form
// of the admin API. It reads admin.listen and admin.token_file from the
// configuration and calls the API, so a revocation goes through a running
// replica (and, in Redis mode, reaches every replica).
func runSessions(args []string, stdout, stderr io.Writer) int {
	usage := func() int {
		fmt.Fprintln(stderr, "usage: portcullis sessions list   -config FILE -user SUB [-provider ID] [-admin URL]")
		fmt.Fprintln(stderr, "       portcullis sessions revoke -config FILE -user SUB [-session ID] [-provider ID] [-admin URL]")
		return 2
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return usage()
	}
	c := sessionsCall{verb: args[0]}
	fs := flag.NewFlagSet("portcullis sessions "+c.verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	fs.StringVar(&c.user, "user", "", "the user's subject (sub claim)")
	fs.StringVar(&c.provider, "provider", "", "provider id, when several are configured")
	fs.StringVar(&c.session, "session", "", "revoke only this session (an id from list)")
	fs.StringVar(&c.admin, "admin", "", "admin API base URL (default: http://<admin.listen>)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *configPath == "" || c.user == "" || fs.NArg() > 0 || (c.verb == "list" && c.session != "") {
		return usage()
	}
	cfg, err := loadConfig(*configPath, policySource(*configPath))
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	if cfg.Admin.Listen == "" || cfg.Admin.TokenFile == "" {
		fmt.Fprintln(stderr, "portcullis: the configuration has no admin API (admin.listen and admin.token_file)")
		return 1
	}
	if err := cfg.readAdminToken(os.ReadFile); err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	body, err := c.do(cfg.Admin)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	c.print(stdout, body)
	return 0
}

// sessionsCall is one `portcullis sessions` command.
type sessionsCall struct {
	verb, user, provider, session, admin string
}

// sessionsReply is what the admin API answers.
type sessionsReply struct {
	Message  string `json:"message"`
	Revoked  int    `json:"revoked"`
	Sessions []struct {
		ID        string    `json:"id"`
		Created   time.Time `json:"created"`
		LastSeen  time.Time `json:"last_seen"`
		Expires   time.Time `json:"expires"`
		UserAgent string    `json:"user_agent"`
	} `json:"sessions"`
}

// do calls the admin API at c.admin, or at admin.listen.
func (c sessionsCall) do(admin proxy.AdminConfig) (*sessionsReply, error) {
	base := c.admin
	if base == "" {
		host, port, _ := net.SplitHostPort(admin.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	u := strings.TrimSuffix(base, "/") + "/admin/sessions"
	if c.session != "" {
		u += "/" + url.PathEscape(c.session)
	}
	q := url.Values{"user": {c.user}}
	if c.provider != "" {
		q.Set("provider", c.provider)
	}
	method := http.MethodGet
	if c.verb == "revoke" {
		method = http.MethodDelete
	}
	req, err := http.NewRequest(method, u+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(admin.Token))
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	var body sessionsReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("admin API answered %s", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API answered %s: %s", resp.Status, body.Message)
	}
	return &body, nil
}

func (c sessionsCall) print(w io.Writer, body *sessionsReply) {
	if c.verb == "list" {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST SEEN\tEXPIRES\tUSER AGENT")
		for _, s := range body.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.Format(time.RFC3339), s.LastSeen.Format(time.RFC3339),
				s.Expires.Format(time.RFC3339), s.UserAgent)
		}
		tw.Flush()
		return
	}
	if body.Revoked < 0 {
		fmt.Fprintf(w, "revoked every session of %s (cookie store: on the replica that answered)\n", c.user)
	} else {
		fmt.Fprintf(w, "revoked %d session(s) of %s\n", body.Revoked, c.user)
	}
}
