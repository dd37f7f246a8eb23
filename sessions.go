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
	verb := args[0]
	fs := flag.NewFlagSet("portcullis sessions "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	user := fs.String("user", "", "the user's subject (sub claim)")
	provider := fs.String("provider", "", "provider id, when several are configured")
	sessionID := fs.String("session", "", "revoke only this session (an id from list)")
	adminURL := fs.String("admin", "", "admin API base URL (default: http://<admin.listen>)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *configPath == "" || *user == "" || fs.NArg() > 0 || (verb == "list" && *sessionID != "") {
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
	base := *adminURL
	if base == "" {
		host, port, _ := net.SplitHostPort(cfg.Admin.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	u := strings.TrimSuffix(base, "/") + "/admin/sessions"
	if *sessionID != "" {
		u += "/" + url.PathEscape(*sessionID)
	}
	q := url.Values{"user": {*user}}
	if *provider != "" {
		q.Set("provider", *provider)
	}
	method := http.MethodGet
	if verb == "revoke" {
		method = http.MethodDelete
	}
	req, err := http.NewRequest(method, u+"?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(cfg.Admin.Token))
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis: admin API:", err)
		return 1
	}
	defer resp.Body.Close()
	var body struct {
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
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		fmt.Fprintf(stderr, "portcullis: admin API answered %s\n", resp.Status)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "portcullis: admin API answered %s: %s\n", resp.Status, body.Message)
		return 1
	}
	switch verb {
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST SEEN\tEXPIRES\tUSER AGENT")
		for _, s := range body.Sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.Format(time.RFC3339), s.LastSeen.Format(time.RFC3339),
				s.Expires.Format(time.RFC3339), s.UserAgent)
		}
		tw.Flush()
	case "revoke":
		if body.Revoked < 0 {
			fmt.Fprintf(stdout, "revoked every session of %s (cookie store: on the replica that answered)\n", *user)
		} else {
			fmt.Fprintf(stdout, "revoked %d session(s) of %s\n", body.Revoked, *user)
		}
	}
	return 0
}
