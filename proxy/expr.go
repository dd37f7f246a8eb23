package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/portcullis/portcullis/session"
)

// expr.go compiles and evaluates a rule's `expr:`, a CEL expression
// (github.com/google/cel-go) over the identity, the request and the time.
// Every expression is parsed, type-checked and cost-estimated when the
// configuration loads: one that does not compile, does not return a bool,
// or could cost more than exprMaxCost is refused then, never at a request.
// At a request an evaluation error denies (fail closed). The variables are
// declared as qualified names ("request.method"), so each is typed and the
// activation builds only those an expression reads.

const (
	// exprMaxLen bounds one expression's source, in bytes.
	exprMaxLen = 4096
	// exprMaxCost bounds what an expression may cost, statically at load
	// (with the size bounds of exprSizes) and again while it runs (sizes
	// can exceed the bounds: a user in 5,000 groups). A typical rule
	// costs under 20; a scan of every group, about 3,000.
	exprMaxCost = 100_000
	// exprMaxNesting bounds comprehensions inside comprehensions.
	exprMaxNesting = 2
)

// exprSizes are the largest sizes the static cost estimate assumes.
var exprSizes = map[string]uint64{
	"identity.groups":   1000,
	"identity.claims":   64,
	"request.headers":   128,
	"request.query":     128,
	"request.segments":  256,
	"request.path":      8192,
	"@claims.values":    64,
	"@query.values":     64,
	"@string":           4096,
	"request.source_ip": 45,
}

// exprVars declares the variables with their types (docs/policy.md).
var exprVars = []struct {
	name string
	t    *cel.Type
}{
	{"identity.subject", cel.StringType},
	{"identity.issuer", cel.StringType},
	{"identity.provider", cel.StringType},
	{"identity.email", cel.StringType},
	{"identity.email_verified", cel.BoolType},
	{"identity.name", cel.StringType},
	{"identity.preferred_username", cel.StringType},
	{"identity.groups", cel.ListType(cel.StringType)},
	{"identity.claims", cel.MapType(cel.StringType, cel.ListType(cel.StringType))},
	{"identity.authenticated_via", cel.StringType},
	{"request.method", cel.StringType},
	{"request.host", cel.StringType},
	{"request.path", cel.StringType},
	{"request.segments", cel.ListType(cel.StringType)},
	{"request.query", cel.MapType(cel.StringType, cel.ListType(cel.StringType))},
	{"request.headers", cel.MapType(cel.StringType, cel.StringType)},
	{"request.source_ip", cel.StringType},
	{"now", cel.TimestampType},
}

// secretHeaders never reach request.headers: credentials are not policy
// inputs, and an expression must not be able to leak or compare them.
// The identity headers the gateway sets were removed from the request
// before anything (managedHeaders).
var secretHeaders = newHeaderSet("Authorization", "Proxy-Authorization", "Cookie", "X-Csrf-Token", "X-Xsrf-Token")

// exprEnv is the environment every expression of one configuration
// compiles in: the variables, CEL's standard library, ext.Strings,
// ext.Network (ip(), cidr()), and the gateway's helpers, whose time
// functions read zone (policy.time_zone).
type exprEnv struct {
	env  *cel.Env
	zone *time.Location
	// windows holds every hours window a within() names, parsed at load;
	// read-only once the configuration is compiled.
	windows map[string][]window
}

// newExprEnv is the environment for one configuration; CEL's own is
// built when the first expression compiles, so a policy without any
// costs no memory for it.
func newExprEnv(zone *time.Location) (*exprEnv, error) {
	return &exprEnv{zone: zone, windows: map[string][]window{}}, nil
}

// ready builds CEL's environment, once.
func (e *exprEnv) ready() error {
	if e.env != nil {
		return nil
	}
	opts := []cel.EnvOption{
		cel.ParserExpressionSizeLimit(exprMaxLen),
		cel.ParserRecursionLimit(32),
		cel.CrossTypeNumericComparisons(true),
		cel.ASTValidators(cel.ValidateRegexLiterals(), cel.ValidateTimestampLiterals(), cel.ValidateDurationLiterals(),
			cel.ValidateComprehensionNestingLimit(exprMaxNesting)),
		ext.Strings(), ext.Network(),
	}
	for _, v := range exprVars {
		opts = append(opts, cel.Variable(v.name, v.t))
	}
	opts = append(opts, e.helpers()...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return fmt.Errorf("expressions: %w", err)
	}
	e.env = env
	return nil
}

// helpers are the gateway's own functions.
func (e *exprEnv) helpers() []cel.EnvOption {
	local := func(v ref.Val) (time.Time, bool) {
		ts, ok := v.(types.Timestamp)
		return ts.In(e.zone), ok
	}
	intOf := func(f func(time.Time) int) func(ref.Val) ref.Val {
		return func(v ref.Val) ref.Val {
			t, ok := local(v)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return types.Int(f(t))
		}
	}
	return []cel.EnvOption{
		// ip(s).in_cidr("10.0.0.0/8"): the address is in the block.
		cel.Function("in_cidr", cel.MemberOverload("ip_in_cidr_string", []*cel.Type{ext.IPType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(ipInCIDR))),
		// now.hour(), now.minute(), now.weekday() (0 is Sunday), in
		// policy.time_zone.
		cel.Function("hour", cel.MemberOverload("timestamp_local_hour", []*cel.Type{cel.TimestampType}, cel.IntType,
			cel.UnaryBinding(intOf(time.Time.Hour)))),
		cel.Function("minute", cel.MemberOverload("timestamp_local_minute", []*cel.Type{cel.TimestampType}, cel.IntType,
			cel.UnaryBinding(intOf(time.Time.Minute)))),
		cel.Function("weekday", cel.MemberOverload("timestamp_local_weekday", []*cel.Type{cel.TimestampType}, cel.IntType,
			cel.UnaryBinding(intOf(func(t time.Time) int { return int(t.Weekday()) })))),
		// now.within("Mon-Fri 09:00-18:00"): the hours: syntax, in
		// policy.time_zone; the argument must be a constant (checked at
		// load, so a malformed window never reaches a request).
		cel.Function("within", cel.MemberOverload("timestamp_within_string", []*cel.Type{cel.TimestampType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(v, spec ref.Val) ref.Val {
				t, ok := local(v)
				s, ok2 := spec.(types.String)
				ws, ok3 := e.windows[string(s)]
				if !ok || !ok2 || !ok3 {
					return types.NewErr("within: %v is not an hours window", spec)
				}
				return types.Bool(inWindows(ws, t))
			}))),
		// request.segment(i): the i-th segment of the path, "" past the
		// end (request.segments[i] is an error there, which denies).
		cel.Function("segment", cel.MemberOverload("string_segment_int", []*cel.Type{cel.StringType, cel.IntType}, cel.StringType,
			cel.BinaryBinding(func(p, i ref.Val) ref.Val {
				path, ok := p.(types.String)
				n, ok2 := i.(types.Int)
				if !ok || !ok2 {
					return types.MaybeNoSuchOverloadErr(p)
				}
				return types.String(pathSegment(string(path), int(n)))
			}))),
	}
}

func ipInCIDR(addr, block ref.Val) ref.Val {
	ip, ok := addr.(ext.IP)
	s, ok2 := block.(types.String)
	if !ok || !ok2 {
		return types.MaybeNoSuchOverloadErr(addr)
	}
	p, err := parseCIDR(string(s))
	if err != nil {
		return types.NewErr("in_cidr: %v", err)
	}
	return types.Bool(p.Contains(ip.Addr.Unmap()))
}

// parseCIDR reads a block, or an address as a block of one.
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR block", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// pathSegment is the i-th segment of a canonical path ("/t/acme/x": 0 is
// "t", 1 "acme"), "" when there is none.
func pathSegment(path string, i int) string {
	if i < 0 {
		return ""
	}
	rest := strings.TrimPrefix(path, "/")
	for ; i > 0; i-- {
		_, after, ok := strings.Cut(rest, "/")
		if !ok {
			return ""
		}
		rest = after
	}
	seg, _, _ := strings.Cut(rest, "/")
	return seg
}

// compiledExpr is one rule's expression, ready to run.
type compiledExpr struct {
	src string
	// prg tracks its cost and stops at exprMaxCost; fast does not, and
	// runs only on inputs within exprSizes, where the static estimate
	// already bounds the cost (bounded).
	prg, fast cel.Program
	cost      uint64 // the static estimate's upper bound
	// parts are the top-level conjuncts ("a && b && c"), each compiled on
	// its own, to name the one that failed when the whole is false. Nil
	// when the expression is not a conjunction.
	parts []exprPart
	// reads notes which variables the expression reads.
	groups, headers, query bool
	claims                 []string // the claim names it reads (constant keys)
}

type exprPart struct {
	src string
	prg cel.Program
}

// exprError is an expression refused at load: where (the rule's field),
// and CEL's issues with their place in the expression.
type exprError struct {
	field string
	at    Pos // where the expression starts in the file; zero when unknown
	msgs  []string
}

// Pos is a place in the configuration file, for errors.
type Pos struct {
	File string
	Line int
	// Block says the value is a YAML block scalar (| or >): the
	// expression's first line is the one after Line.
	Block bool
	// Folded holds, for a folded scalar (>), the length of each of its
	// lines in the file: folding joins them with spaces into one line of
	// the expression, and this maps a column back to its line.
	Folded []int
}

// place is the file line and column of the expression's line:col.
func (p Pos) place(line, col int) (int, int) {
	start := p.Line
	if p.Block {
		start++
	}
	if p.Folded != nil && line == 1 {
		off := col - 1
		for i, n := range p.Folded {
			if off <= n || i == len(p.Folded)-1 {
				return start + i, off + 1
			}
			off -= n + 1
		}
	}
	return start + line - 1, col
}

func (e *exprError) Error() string {
	return strings.Join(e.msgs, "; ")
}

// issue formats one problem at line:col of the expression (1-based).
func (e *exprError) issue(line, col int, msg string) {
	where := e.field
	if e.at.File != "" && e.at.Line > 0 {
		fileLine, _ := e.at.place(max(line, 1), col)
		where = fmt.Sprintf("%s:%d: %s", e.at.File, fileLine, e.field)
	} else if line > 0 {
		where += fmt.Sprintf(" (line %d, column %d of the expression)", line, col)
	}
	for _, v := range []string{"identity", "request"} {
		if strings.HasPrefix(msg, "undeclared reference to '"+v+"'") {
			msg += ": " + v + " has no such field; " + v + "." + strings.Join(fieldsOf(v), ", ") + " (docs/policy.md)"
		}
	}
	e.msgs = append(e.msgs, where+": "+msg)
}

// fieldsOf lists the declared fields of variable v.
func fieldsOf(v string) []string {
	var out []string
	for _, d := range exprVars {
		if f, ok := strings.CutPrefix(d.name, v+"."); ok {
			out = append(out, f)
		}
	}
	return out
}

// compile parses, checks and estimates src, the expr of field.
func (e *exprEnv) compile(field string, at Pos, src string) (*compiledExpr, error) {
	fail := &exprError{field: field, at: at}
	if strings.TrimSpace(src) == "" {
		fail.issue(0, 0, "the expression is empty")
		return nil, fail
	}
	if len(src) > exprMaxLen {
		fail.issue(0, 0, fmt.Sprintf("the expression is %d bytes, more than %d", len(src), exprMaxLen))
		return nil, fail
	}
	if err := e.ready(); err != nil {
		fail.issue(0, 0, err.Error())
		return nil, fail
	}
	a, iss := e.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			loc := ce.Location
			fail.issue(loc.Line(), loc.Column()+1, ce.Message)
		}
		return nil, fail
	}
	if !a.OutputType().IsExactType(cel.BoolType) {
		fail.issue(0, 0, fmt.Sprintf("the expression returns %s, not bool", a.OutputType()))
		return nil, fail
	}
	ce := &compiledExpr{src: src}
	if err := e.inspect(a, ce); err != nil {
		fail.issue(0, 0, err.Error())
		return nil, fail
	}
	est, err := e.env.EstimateCost(a, sizeEstimator{})
	if err != nil {
		fail.issue(0, 0, "its cost cannot be estimated: "+err.Error())
		return nil, fail
	}
	if est.Max > exprMaxCost {
		fail.issue(0, 0, fmt.Sprintf("the expression could cost up to %d, more than %d allowed (iterating over lists inside iterations, or over large strings)", est.Max, exprMaxCost))
		return nil, fail
	}
	ce.cost = est.Max
	if ce.prg, err = e.program(a); err == nil {
		ce.fast, err = e.env.Program(a, cel.EvalOptions(cel.OptOptimize))
	}
	if err != nil {
		fail.issue(0, 0, err.Error())
		return nil, fail
	}
	ce.parts = e.conjuncts(a)
	return ce, nil
}

func (e *exprEnv) program(a *cel.Ast) (cel.Program, error) {
	return e.env.Program(a, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(exprMaxCost))
}

// conjuncts compiles each top-level operand of a conjunction on its own.
func (e *exprEnv) conjuncts(a *cel.Ast) []exprPart {
	var terms []ast.Expr
	var walk func(x ast.Expr)
	walk = func(x ast.Expr) {
		if x.Kind() == ast.CallKind && x.AsCall().FunctionName() == operators.LogicalAnd {
			for _, arg := range x.AsCall().Args() {
				walk(arg)
			}
			return
		}
		terms = append(terms, x)
	}
	walk(a.NativeRep().Expr())
	if len(terms) < 2 {
		return nil
	}
	parts := make([]exprPart, 0, len(terms))
	for _, t := range terms {
		src, err := cel.ExprToString(t, a.NativeRep().SourceInfo())
		if err != nil {
			return nil
		}
		pa, iss := e.env.Compile(src)
		if iss != nil && iss.Err() != nil {
			return nil
		}
		prg, err := e.program(pa)
		if err != nil {
			return nil
		}
		parts = append(parts, exprPart{src: src, prg: prg})
	}
	return parts
}

// inspect notes what a reads and refuses what cannot be judged at load:
// a claim named by a computed key (sign-in must know which claims to
// keep), a regular expression built at run time, a within() whose window
// is not a constant, and an in_cidr() block that does not parse.
func (e *exprEnv) inspect(a *cel.Ast, ce *compiledExpr) error {
	native := a.NativeRep()
	refs := native.ReferenceMap()
	var errs []error
	claims := map[string]bool{}
	ast.PreOrderVisit(ast.NavigateAST(native), ast.NewExprVisitor(func(x ast.Expr) {
		nav := x.(ast.NavigableExpr)
		if r, ok := refs[x.ID()]; ok && r.Value == nil && len(r.OverloadIDs) == 0 {
			switch r.Name {
			case "identity.groups":
				ce.groups = true
			case "request.headers":
				ce.headers = true
			case "request.query":
				ce.query = true
			case "identity.claims":
				name, ok := claimKey(nav)
				if !ok {
					errs = append(errs, errors.New("identity.claims must be read with a constant name (identity.claims.tenant, identity.claims[\"tenant\"], has(identity.claims.tenant) or \"tenant\" in identity.claims): the session keeps only the claims the policy names"))
				}
				claims[name] = true
			}
		}
		if x.Kind() != ast.CallKind {
			return
		}
		call := x.AsCall()
		arg := func(i int) (string, bool) {
			args := call.Args()
			if call.IsMemberFunction() {
				args = append([]ast.Expr{call.Target()}, args...)
			}
			if i >= len(args) || args[i].Kind() != ast.LiteralKind {
				return "", false
			}
			s, ok := args[i].AsLiteral().(types.String)
			return string(s), ok
		}
		switch call.FunctionName() {
		case "matches", "find", "findAll", "extract", "extractAll", "replace":
			if call.FunctionName() == "matches" || call.FunctionName() == "find" || call.FunctionName() == "findAll" {
				if _, ok := arg(1); !ok {
					errs = append(errs, fmt.Errorf("%s() needs a constant pattern: a pattern built from the request would be compiled at every request", call.FunctionName()))
				}
			}
		case "within":
			spec, ok := arg(1)
			if !ok {
				errs = append(errs, errors.New("within() needs a constant window, such as \"Mon-Fri 09:00-18:00\""))
				break
			}
			ws, err := parseWindows([]string{spec})
			if err != nil {
				errs = append(errs, fmt.Errorf("within(): %v", err))
				break
			}
			e.windows[spec] = ws
		case "in_cidr":
			if block, ok := arg(1); ok {
				if _, err := parseCIDR(block); err != nil {
					errs = append(errs, fmt.Errorf("in_cidr(): %v", err))
				}
			}
		}
	}))
	for name := range claims {
		if name != "" {
			ce.claims = append(ce.claims, name)
		}
	}
	return errors.Join(errs...)
}

// claimKey is the constant claim name the parent of nav (a reference to
// identity.claims) reads, and whether there is one.
func claimKey(nav ast.NavigableExpr) (string, bool) {
	parent, ok := nav.Parent()
	if !ok {
		return "", false
	}
	switch parent.Kind() {
	case ast.SelectKind:
		return parent.AsSelect().FieldName(), true
	case ast.CallKind:
		call := parent.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.Index, operators.OptIndex:
			if len(args) == 2 && args[0].ID() == nav.ID() && args[1].Kind() == ast.LiteralKind {
				s, ok := args[1].AsLiteral().(types.String)
				return string(s), ok
			}
		case operators.In:
			if len(args) == 2 && args[1].ID() == nav.ID() && args[0].Kind() == ast.LiteralKind {
				s, ok := args[0].AsLiteral().(types.String)
				return string(s), ok
			}
		}
	}
	return "", false
}

// sizeEstimator gives the cost estimate the bounds of exprSizes.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	key := ""
	switch {
	case len(path) == 1:
		key = path[0]
	case len(path) >= 2 && path[0] == "identity.claims":
		key = "@claims.values"
	case len(path) >= 2 && path[0] == "request.query":
		key = "@query.values"
	}
	if max, ok := exprSizes[key]; ok {
		return &checker.SizeEstimate{Min: 0, Max: max}
	}
	if n.Type() != nil && (n.Type().IsExactType(cel.StringType) || n.Type().IsExactType(cel.BytesType)) {
		return &checker.SizeEstimate{Min: 0, Max: exprSizes["@string"]}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return nil
}

// exprInput is what one evaluation reads: the identity and how it came,
// the method judged, and the request.
type exprInput struct {
	s      *session.Session
	via    Via
	method string
	req    *reqAttrs
}

// reqAttrs are the request's attributes an expression may read, kept on
// a Match only when some rule reads the request.
type reqAttrs struct {
	host, path, query string
	header            http.Header
	client            netip.Addr
	now               time.Time
}

// ResolveName makes exprInput the activation: each variable is built when
// an expression reads it, never before.
func (in *exprInput) ResolveName(name string) (any, bool) {
	id := &in.s.Identity
	switch name {
	case "identity.subject":
		return types.String(id.Subject), true
	case "identity.issuer":
		return types.String(id.Issuer), true
	case "identity.provider":
		return types.String(in.s.Provider), true
	case "identity.email":
		return types.String(id.Email), true
	case "identity.email_verified":
		return types.Bool(id.EmailVerified), true
	case "identity.name":
		return types.String(id.Name), true
	case "identity.preferred_username":
		return types.String(id.PreferredUsername), true
	case "identity.groups":
		return types.NewStringList(types.DefaultTypeAdapter, id.Groups), true
	case "identity.claims":
		return stringListMap(id.Claims), true
	case "identity.authenticated_via":
		return types.String(in.via.String()), true
	case "request.method":
		return types.String(in.method), true
	case "request.host":
		return types.String(in.req.host), true
	case "request.path":
		return types.String(in.req.path), true
	case "request.segments":
		return types.NewStringList(types.DefaultTypeAdapter, segments(in.req.path)), true
	case "request.query":
		q, err := url.ParseQuery(in.req.query)
		if err != nil {
			return types.NewErr("request.query: %v", err), true // an ambiguous query denies
		}
		return stringListMap(q), true
	case "request.headers":
		return headerMap(in.req.header), true
	case "request.source_ip":
		if !in.req.client.IsValid() {
			return types.String(""), true
		}
		return types.String(in.req.client.String()), true
	case "now":
		return types.Timestamp{Time: in.req.now}, true
	}
	return nil, false
}

func (in *exprInput) Parent() interpreter.Activation { return nil }

// segments splits a canonical path into its segments.
func segments(path string) []string {
	path = strings.TrimPrefix(path, "/")
	if path == "" {
		return []string{}
	}
	return strings.Split(path, "/")
}

// stringListMap is m as a CEL map(string, list(string)).
func stringListMap(m map[string][]string) traits.Mapper {
	conv := make(map[ref.Val]ref.Val, len(m))
	for k, v := range m {
		conv[types.String(k)] = types.NewStringList(types.DefaultTypeAdapter, v)
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, conv)
}

// headerMap is the request's headers an expression may read: names lower
// case, repeated fields joined with ", " (RFC 9110 §5.3), the credentials
// of secretHeaders left out.
func headerMap(h http.Header) traits.Mapper {
	m := make(map[string]string, len(h))
	for k, v := range h {
		if secretHeaders.has(k) {
			continue
		}
		m[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return types.NewStringStringMap(types.DefaultTypeAdapter, m)
}

// eval runs the expression for in: true or false, or the error that
// denied.
func (ce *compiledExpr) eval(in *exprInput) (bool, error) {
	if in.bounded(ce) {
		return runBool(ce.fast, in)
	}
	return runBool(ce.prg, in)
}

// bounded reports whether what ce reads of in is within exprSizes, the
// sizes the static cost estimate assumed: then the expression cannot
// cost more than it allowed, and needs no tracking while it runs.
func (in *exprInput) bounded(ce *compiledExpr) bool {
	const str = 4096 // exprSizes["@string"]
	id := &in.s.Identity
	if len(id.Subject) > str || len(id.Issuer) > str || len(id.Email) > str || len(id.Name) > str ||
		len(id.PreferredUsername) > str || len(in.s.Provider) > str || len(in.req.host) > str || len(in.req.path) > 8192 {
		return false
	}
	if ce.groups {
		if len(id.Groups) > 1000 {
			return false
		}
		for _, g := range id.Groups {
			if len(g) > str {
				return false
			}
		}
	}
	if len(ce.claims) > 0 {
		if len(id.Claims) > 64 {
			return false
		}
		for _, name := range ce.claims {
			vs := id.Claims[name]
			if len(vs) > 64 {
				return false
			}
			for _, v := range vs {
				if len(v) > str {
					return false
				}
			}
		}
	}
	if ce.query && len(in.req.query) > str {
		return false
	}
	if ce.headers {
		if len(in.req.header) > 128 {
			return false
		}
		for k, vs := range in.req.header {
			n := 2 * len(vs)
			for _, v := range vs {
				n += len(v)
			}
			if len(k) > str || n > str {
				return false
			}
		}
	}
	return true
}

func runBool(prg cel.Program, in *exprInput) (bool, error) {
	out, _, err := prg.Eval(in)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("the expression returned %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// whyFalse names the first conjunct that is false (or fails) for in, for
// the log; the whole expression when it is not a conjunction.
func (ce *compiledExpr) whyFalse(in *exprInput) string {
	for _, p := range ce.parts {
		ok, err := runBool(p.prg, in)
		switch {
		case err != nil:
			return "expr: " + truncate(p.src, 120) + " failed: " + truncate(err.Error(), 120)
		case !ok:
			return "expr: " + truncate(p.src, 120) + " is false"
		}
	}
	return "expr is false: " + truncate(ce.src, 120)
}

func (v Via) String() string {
	switch v {
	case ViaBearer:
		return "bearer"
	case ViaDevice:
		return "device"
	}
	return "session"
}
