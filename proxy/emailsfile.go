package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
)

// emailsfile.go is policy.authenticated_emails_file: oauth2-proxy's list
// of admitted addresses, one a line. It is part of the default rule, like
// policy.emails. main reads the file (proxy opens nothing) and hands every
// new version to EmailsFile.Load; the list is swapped whole, so a decision
// sees the old list or the new one, never half of each.

// emailList is the current addresses, lower case.
type emailList struct {
	set atomic.Pointer[map[string]bool]
}

// has reports whether email (lower case) is listed; false on a nil list.
func (l *emailList) has(email string) bool {
	if l == nil {
		return false
	}
	m := l.set.Load()
	return m != nil && (*m)[email]
}

// EmailsFile is policy.authenticated_emails_file as the running gateway
// uses it. Safe for concurrent use.
type EmailsFile struct {
	path string
	list *emailList
}

// Path is the file's name, as configured.
func (f *EmailsFile) Path() string { return f.path }

// Load replaces the list with the addresses in data, the file's new
// contents, and returns how many there are. A malformed file changes
// nothing: the last good list stays in force.
func (f *EmailsFile) Load(data []byte) (int, error) {
	set, err := parseEmailsFile(data)
	if err != nil {
		return 0, fmt.Errorf("policy.authenticated_emails_file %s: %w", f.path, err)
	}
	f.list.set.Store(&set)
	return len(set), nil
}

// Len is how many addresses the list holds now.
func (f *EmailsFile) Len() int {
	if m := f.list.set.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// parseEmailsFile reads oauth2-proxy's format: one address a line, blank
// lines and lines starting with "#" ignored, compared case-insensitively.
// oauth2-proxy reads the file as CSV and uses each line's first field, so
// text after a comma is ignored here too. An entry that is not a plain
// address (checkEmail) is an error naming its line: a typo must not
// silently admit nobody, or somebody else.
func parseEmailsFile(data []byte) (map[string]bool, error) {
	set := map[string]bool{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		e := strings.TrimSpace(string(line))
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		if i := strings.IndexByte(e, ','); i >= 0 {
			e = strings.TrimSpace(e[:i])
		}
		e = strings.ToLower(strings.Trim(e, `"`))
		if e == "" || !strings.Contains(e, "@") || checkEmail(e) != nil {
			return nil, fmt.Errorf("line %d: %q is not an email address", n+1, truncate(e, 64))
		}
		set[e] = true
	}
	return set, nil
}

// compileEmailsFile attaches the file's list to the default rule, loaded
// with the contents main read at start.
func compileEmailsFile(pol PolicyConfig, def *rule) (*EmailsFile, error) {
	if pol.AuthenticatedEmailsFile == "" {
		return nil, nil
	}
	f := &EmailsFile{path: pol.AuthenticatedEmailsFile, list: &emailList{}}
	if _, err := f.Load(pol.AuthenticatedEmails); err != nil {
		return nil, err
	}
	def.file = f.list
	return f, nil
}
