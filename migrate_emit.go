package main

// migrate_emit.go holds what `portcullis migrate` writes: an ordered tree
// of keys, each with the comment saying where it came from, and the notes
// listed at the end.

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// noteKind sorts the notes at the end of the output.
type noteKind int

const (
	noteNoEquivalent noteKind = iota // the option has no equivalent: it is not carried over
	noteChanged                      // carried over with a different meaning
	noteManual                       // something to do by hand before running
)

var noteTitles = [...]string{
	"No equivalent (not carried over)",
	"Changed in meaning",
	"Manual steps",
}

type note struct {
	kind noteKind
	opt  string
	text string
}

// yentry is one key of the output.
type yentry struct {
	key     string
	val     any // scalar, []string, *ymap or []*ymap
	comment string
}

// ymap is an ordered mapping.
type ymap struct{ entries []*yentry }

func (y *ymap) get(k string) *yentry {
	for _, e := range y.entries {
		if e.key == k {
			return e
		}
	}
	return nil
}

func (y *ymap) entry(k string, mk func() any) *yentry {
	if e := y.get(k); e != nil {
		if e.val == nil && mk != nil {
			e.val = mk()
		}
		return e
	}
	e := &yentry{key: k}
	if mk != nil {
		e.val = mk()
	}
	y.entries = append(y.entries, e)
	return e
}

func (y *ymap) del(k string) {
	y.entries = slices.DeleteFunc(y.entries, func(e *yentry) bool { return e.key == k })
}

// at returns the mapping a dotted path ("providers.0.client_id") ends in,
// creating what is missing, and the last key.
func (y *ymap) at(path string) (*ymap, string) {
	segs := strings.Split(path, ".")
	cur := y
	for i := 0; i < len(segs)-1; i++ {
		if idx, err := strconv.Atoi(segs[i+1]); err == nil {
			e := cur.entry(segs[i], func() any { return []*ymap{} })
			list := e.val.([]*ymap)
			for len(list) <= idx {
				list = append(list, &ymap{})
			}
			e.val = list
			cur = list[idx]
			i++
			continue
		}
		cur = cur.entry(segs[i], func() any { return &ymap{} }).val.(*ymap)
	}
	return cur, segs[len(segs)-1]
}

// migration is one conversion: the options read, the output, the notes.
type migration struct {
	opts      map[string]optValue // by config-file name
	out       *ymap
	notes     []note
	upstreams int  // how many upstreams[] entries were written
	providers int  // how many providers[] entries were written
	alpha     bool // the alpha YAML gave upstreams, providers and server
	alphaSrc  string
}

func newMigration() *migration {
	m := &migration{opts: map[string]optValue{}, out: &ymap{}}
	for _, k := range []string{"server", "providers", "session", "upstreams", "policy", "headers", "ui", "metrics"} {
		m.out.entry(k, nil)
	}
	return m
}

// set writes one key with its comment.
func (m *migration) set(path string, val any, comment string) {
	y, k := m.out.at(path)
	e := y.entry(k, nil)
	e.val, e.comment = val, comment
}

func (m *migration) lookup(path string) any {
	y, k := m.out.at(path)
	if e := y.get(k); e != nil {
		return e.val
	}
	return nil
}

func (m *migration) note(kind noteKind, opt, text string) {
	m.notes = append(m.notes, note{kind, opt, text})
}

func (m *migration) count(kind noteKind) int {
	n := 0
	for _, x := range m.notes {
		if x.kind == kind {
			n++
		}
	}
	return n
}

// render is the YAML written: the tree, then the notes as comments.
func (m *migration) render() []byte {
	root := &ymap{}
	for _, e := range m.out.entries {
		if e.val != nil {
			root.entries = append(root.entries, e)
		}
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{yamlNode(root)}}
	doc.HeadComment = "Portcullis configuration written by `portcullis migrate` from oauth2-proxy's.\n" +
		"Check it with: portcullis -config FILE -check\n" +
		"No secret was copied: ${VARIABLES} and *_file paths name where they come from."
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil { // unreachable: the tree holds strings, bools, ints and lists
		panic(err)
	}
	return append(b.Bytes(), m.reportText("# ")...)
}

// yamlNode turns the tree into yaml.v3 nodes, comments on their line.
func yamlNode(v any) *yaml.Node {
	switch t := v.(type) {
	case *ymap:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, e := range t.entries {
			k := &yaml.Node{Kind: yaml.ScalarNode, Value: e.key}
			val := yamlNode(e.val)
			if val.Kind == yaml.ScalarNode || val.Style == yaml.FlowStyle {
				val.LineComment = comment(e.comment)
			} else {
				k.LineComment = comment(e.comment)
			}
			n.Content = append(n.Content, k, val)
		}
		return n
	case []*ymap:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, y := range t {
			n.Content = append(n.Content, yamlNode(y))
		}
		return n
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, s := range t {
			n.Content = append(n.Content, scalar(s))
		}
		return n
	case string:
		return scalar(t)
	}
	n := &yaml.Node{}
	_ = n.Encode(v)
	return n
}

func scalar(s string) *yaml.Node {
	n := &yaml.Node{}
	_ = n.Encode(s)
	return n
}

func comment(s string) string {
	if s == "" {
		return ""
	}
	return "# " + s
}

// reportText lists the notes, each line prefixed (with "# " in the YAML).
func (m *migration) reportText(prefix string) string {
	var b strings.Builder
	for kind, title := range noteTitles {
		var lines []string
		for _, n := range m.notes {
			if n.kind == noteKind(kind) {
				lines = append(lines, fmt.Sprintf("%s- %s: %s\n", prefix, n.opt, n.text))
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s\n%s%s (%d):\n", strings.TrimSpace(prefix), prefix, title, len(lines))
		slices.Sort(lines)
		b.WriteString(strings.Join(slices.Compact(lines), ""))
	}
	return b.String()
}
