package infra

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestCloudFrontFunction runs the CloudFront Function's unit tests under node.
func TestCloudFrontFunction(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to test the CloudFront Function (infra/cloudfront): %v", err)
	}
	cmd := exec.CommandContext(t.Context(), node, "--test", "cloudfront/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test cloudfront/: %v\n%s", err, out)
	}
	pass := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(out)
	if pass == nil || string(pass[1]) == "0" || !regexp.MustCompile(`(?m)^# fail 0$`).Match(out) {
		t.Fatalf("node --test ran no passing tests, or some failed:\n%s", out)
	}
}

// template is template.yaml, parsed.
type template struct {
	root       *yaml.Node
	params     map[string]*yaml.Node
	conditions map[string]*yaml.Node
	resources  map[string]*yaml.Node
}

func loadTemplate(t *testing.T, data []byte) *template {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse template: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("template is not a YAML mapping")
	}
	tm := &template{root: doc.Content[0], params: map[string]*yaml.Node{}, conditions: map[string]*yaml.Node{},
		resources: map[string]*yaml.Node{}}
	for k, v := range pairs(get(tm.root, "Parameters")) {
		tm.params[k] = v
	}
	for k, v := range pairs(get(tm.root, "Conditions")) {
		tm.conditions[k] = v
	}
	for k, v := range pairs(get(tm.root, "Resources")) {
		tm.resources[k] = v
	}
	return tm
}

func readTemplate(t *testing.T) *template {
	t.Helper()
	data, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return loadTemplate(t, data)
}

// pairs returns the entries of a mapping node.
func pairs(n *yaml.Node) map[string]*yaml.Node {
	m := map[string]*yaml.Node{}
	if n == nil || n.Kind != yaml.MappingNode {
		return m
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		m[n.Content[i].Value] = n.Content[i+1]
	}
	return m
}

// get follows mapping keys and sequence indexes ("0", "1", ...) from n; nil if absent.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch n.Kind {
		case yaml.MappingNode:
			n = pairs(n)[p]
		case yaml.SequenceNode:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return n
}

// str is the value of a scalar at path, or "".
func str(n *yaml.Node, path ...string) string {
	if n = get(n, path...); n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// items returns a sequence's elements, or a scalar as a one-element list.
func items(n *yaml.Node) []*yaml.Node {
	switch {
	case n == nil:
		return nil
	case n.Kind == yaml.SequenceNode:
		return n.Content
	}
	return []*yaml.Node{n}
}

// ref describes an intrinsic function node as a comparable string: "Ref:X", "GetAtt:X.Y",
// "Sub:..." (the template string); a plain scalar as itself.
func ref(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	switch n.Tag {
	case "!Ref":
		return "Ref:" + n.Value
	case "!GetAtt":
		if n.Kind == yaml.SequenceNode && len(n.Content) == 2 {
			return "GetAtt:" + n.Content[0].Value + "." + n.Content[1].Value
		}
		return "GetAtt:" + n.Value
	case "!Sub":
		if n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
			return "Sub:" + n.Content[0].Value
		}
		return "Sub:" + n.Value
	}
	return n.Value
}

// checkReferences returns what in the template names something that does not exist: every !Ref
// must name a parameter, resource or pseudo-parameter, every !GetAtt a resource, every ${...} of
// a !Sub one of those (or a variable of its own map), every !If, !Condition and resource
// Condition a condition. It also returns how many references it checked.
func checkReferences(tm *template) (problems []string, checked int) {
	pseudoParams := []string{
		"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region",
		"AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
	}
	knownTags := []string{
		"!Ref", "!GetAtt", "!Sub", "!Select", "!Split", "!Join", "!If", "!Equals", "!Not", "!And",
		"!Or", "!FindInMap", "!Base64", "!Cidr", "!GetAZs", "!ImportValue", "!Condition", "!Transform",
	}
	subVar := regexp.MustCompile(`\$\{([^}]*)\}`)
	defined := func(name string) bool {
		_, p := tm.params[name]
		_, r := tm.resources[name]
		return p || r || slices.Contains(pseudoParams, name)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		line := n.Line
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") && !slices.Contains(knownTags, n.Tag) {
			problems = append(problems, fmt.Sprintf("line %d: unknown tag %s", line, n.Tag))
		}
		long := ""
		if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
			long = n.Content[0].Value // Ref, Fn::GetAtt, Fn::Sub in long form
		}
		switch {
		case n.Tag == "!If" || long == "Fn::If" || n.Tag == "!Condition" || long == "Condition":
			target := n
			if long != "" {
				target = n.Content[1]
			}
			name := target.Value
			if target.Kind == yaml.SequenceNode {
				name = ""
				if len(target.Content) == 3 {
					name = target.Content[0].Value
				}
			}
			checked++
			if _, ok := tm.conditions[name]; !ok {
				problems = append(problems, fmt.Sprintf("line %d: condition %q is not in Conditions", line, name))
			}
		case n.Tag == "!Ref" || long == "Ref":
			name := n.Value
			if long != "" {
				name = n.Content[1].Value
			}
			checked++
			if !defined(name) {
				problems = append(problems, fmt.Sprintf("line %d: Ref %s names no parameter or resource", line, name))
			}
		case n.Tag == "!GetAtt" || long == "Fn::GetAtt":
			target := n
			if long != "" {
				target = n.Content[1]
			}
			name := target.Value
			if target.Kind == yaml.SequenceNode && len(target.Content) > 0 {
				name = target.Content[0].Value
			} else {
				name, _, _ = strings.Cut(name, ".")
			}
			checked++
			if _, ok := tm.resources[name]; !ok {
				problems = append(problems, fmt.Sprintf("line %d: GetAtt %s names no resource", line, name))
			}
		case n.Tag == "!Sub" || long == "Fn::Sub":
			target := n
			if long != "" {
				target = n.Content[1]
			}
			s, vars := target.Value, map[string]*yaml.Node{}
			if target.Kind == yaml.SequenceNode && len(target.Content) > 0 {
				s = target.Content[0].Value
				if len(target.Content) > 1 {
					vars = pairs(target.Content[1])
				}
			}
			for _, m := range subVar.FindAllStringSubmatch(s, -1) {
				if strings.HasPrefix(m[1], "!") {
					continue // ${!Literal}
				}
				name := m[1]
				if _, ok := vars[name]; ok {
					continue
				}
				if !strings.HasPrefix(name, "AWS::") {
					name, _, _ = strings.Cut(name, ".")
				}
				checked++
				if !defined(name) {
					problems = append(problems, fmt.Sprintf("line %d: Sub ${%s} names no parameter or resource", line, m[1]))
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(tm.root)
	for name, r := range tm.resources {
		if c := get(r, "Condition"); c != nil {
			checked++
			if _, ok := tm.conditions[c.Value]; !ok {
				problems = append(problems, fmt.Sprintf("resource %s: condition %q is not in Conditions", name, c.Value))
			}
		}
	}
	return problems, checked
}

func TestTemplateReferences(t *testing.T) {
	problems, checked := checkReferences(readTemplate(t))
	for _, p := range problems {
		t.Error(p)
	}
	if checked < 20 {
		t.Errorf("checked only %d references", checked)
	}

	// The checker itself finds what is wrong.
	broken := loadTemplate(t, []byte(`
Parameters:
  P: {Type: String}
Conditions:
  C: !Not [!Equals [!Ref P, '']]
Resources:
  A:
    Type: AWS::S3::Bucket
    Properties:
      Good: !Sub '${P}-${A.Arn}-${AWS::Region}-${!Literal}-${X}'
      Vars: !Sub ['${X}', {X: !Ref P}]
      Long: {Ref: Missing}
      Bad1: !Ref Nope
      Bad2: !GetAtt Gone.Arn
      Bad3: !Sub 'arn:${Absent.Arn}'
      Bad4: !GetAttr A.Arn
      Cond: !If [C, !Ref P, !Ref AWS::NoValue]
      LongCond: {'Fn::If': [C, a, b]}
      Bad5: !If [NoSuchCondition, a, b]
  B:
    Type: AWS::S3::Bucket
    Condition: Undefined
`))
	problems, _ = checkReferences(broken)
	want := []string{"names no parameter or resource", "Nope", "Gone", "Absent", "unknown tag !GetAttr", "Missing",
		"NoSuchCondition", "Undefined"}
	joined := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("checker missed %q in the broken template; it found:\n%s", w, joined)
		}
	}
	if len(problems) != 8 {
		t.Errorf("checker found %d problems in the broken template, want 8 (${X} of the template and its map):\n%s", len(problems), joined)
	}
}

// matchPath reports whether a CloudFront path pattern matches a request path: '*' matches any
// run of characters, '?' exactly one, everything else itself (case-sensitively); a pattern
// without a leading '/' is taken as if it had one.
func matchPath(pattern, path string) bool {
	if !strings.HasPrefix(pattern, "/") {
		pattern = "/" + pattern
	}
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(path)
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*.zip", "/example.com/m/@v/v1.0.0.zip", true},
		{"*.zip", "/example.com/m/@v/v1.0.0.ZIP", false},
		{"*.zip", "/example.com/m/@v/v1.0.0.zip/x", false},
		{"/sumdb/*", "/sumdb/s.example/lookup/example.com/m@v1.0.0", true},
		{"sumdb/*", "/sumdb/s.example/latest", true},
		{"/sumdb/*", "/SUMDB/s.example/latest", false},
		{"/sumdb/*", "/x/sumdb/s.example/latest", false},
		{"*/@v/v*.*.*.info", "/example.com/m/@v/v1.2.info", false},
		{"*/@v/v*.*.*.info", "/example.com/m/@v/v1.2.3.info", true},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"/a.c", "/abc", false},
		{"/a+c", "/a+c", true},
		{"/a+c", "/aac", false},
	}
	for _, tt := range tests {
		if got := matchPath(tt.pattern, tt.path); got != tt.want {
			t.Errorf("matchPath(%q, %q) = %t; want %t", tt.pattern, tt.path, got, tt.want)
		}
	}
}

// cachingDisabled is the id of CloudFront's managed CachingDisabled cache policy (every TTL 0,
// nothing in the cache key).
const cachingDisabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"

// paramValue is the value of !Ref NAME (or a plain scalar) under the given parameter values,
// which default to the parameters' defaults.
func paramValue(tm *template, n *yaml.Node, params map[string]string) string {
	if n == nil {
		return ""
	}
	if r := ref(n); strings.HasPrefix(r, "Ref:") {
		name := strings.TrimPrefix(r, "Ref:")
		if v, ok := params[name]; ok {
			return v
		}
		return str(tm.params[name], "Default")
	}
	return n.Value
}

// condition evaluates a condition expression (!Not, !Equals, !And, !Or, !Condition over
// parameter values); it fails the test on anything else.
func condition(t *testing.T, tm *template, n *yaml.Node, params map[string]string) bool {
	t.Helper()
	args := items(n)
	switch n.Tag {
	case "!Not":
		return !condition(t, tm, args[0], params)
	case "!Equals":
		return paramValue(tm, args[0], params) == paramValue(tm, args[1], params)
	case "!And", "!Or":
		and := n.Tag == "!And"
		for _, a := range args {
			if condition(t, tm, a, params) != and {
				return !and
			}
		}
		return and
	case "!Condition":
		if c := tm.conditions[n.Value]; c != nil {
			return condition(t, tm, c, params)
		}
	}
	t.Fatalf("line %d: condition %s not understood", n.Line, n.Tag)
	return false
}

// behaviours returns the distribution's cache behaviours in order under the given parameter
// values: an !If [COND, BEHAVIOUR, !Ref AWS::NoValue] is the behaviour or nothing.
func behaviours(t *testing.T, tm *template, dist *yaml.Node, params map[string]string) []*yaml.Node {
	t.Helper()
	var out []*yaml.Node
	for _, b := range items(get(dist, "CacheBehaviors")) {
		if b.Tag == "!If" {
			if len(b.Content) != 3 {
				t.Fatalf("line %d: !If with %d arguments", b.Line, len(b.Content))
			}
			cond := tm.conditions[b.Content[0].Value]
			if cond == nil {
				t.Fatalf("line %d: condition %q is not in Conditions", b.Line, b.Content[0].Value)
			}
			if !condition(t, tm, cond, params) {
				b = b.Content[2]
			} else {
				b = b.Content[1]
			}
			if ref(b) == "Ref:AWS::NoValue" {
				continue
			}
		}
		out = append(out, b)
	}
	return out
}

func TestTemplateCacheBehaviours(t *testing.T) {
	tm := readTemplate(t)
	dist := get(tm.resources["Distribution"], "Properties", "DistributionConfig")
	if dist == nil {
		t.Fatal("no Distribution")
	}
	origins := map[string]*yaml.Node{}
	for _, o := range items(get(dist, "Origins")) {
		origins[str(o, "Id")] = o
	}
	groups := map[string]*yaml.Node{}
	for _, g := range items(get(dist, "OriginGroups", "Items")) {
		groups[str(g, "Id")] = g
	}
	oacType := func(o *yaml.Node) string {
		r := ref(get(o, "OriginAccessControlId"))
		name, _, _ := strings.Cut(strings.TrimPrefix(r, "GetAtt:"), ".")
		return str(tm.resources[name], "Properties", "OriginAccessControlConfig", "OriginAccessControlOriginType")
	}
	isBucket := func(o *yaml.Node) bool {
		return o != nil && ref(get(o, "DomainName")) == "GetAtt:ModuleBucket.RegionalDomainName" &&
			get(o, "S3OriginConfig") != nil && oacType(o) == "s3"
	}
	isFunction := func(o *yaml.Node) bool {
		if o == nil || oacType(o) != "lambda" || str(o, "CustomOriginConfig", "OriginProtocolPolicy") != "https-only" {
			return false
		}
		// !Select [2, !Split ['/', !GetAtt FunctionUrl.FunctionUrl]]: the URL's host.
		sel := get(o, "DomainName")
		return sel.Tag == "!Select" && str(sel, "0") == "2" && get(sel, "1").Tag == "!Split" &&
			ref(get(sel, "1", "1")) == "GetAtt:FunctionUrl.FunctionUrl" && str(sel, "1", "0") == "/" &&
			ref(get(tm.resources["FunctionUrl"], "Properties", "TargetFunctionArn")) == "GetAtt:ModmirrorFunction.Arn"
	}
	// policy returns a behaviour's cache policy and whether it is the managed CachingDisabled.
	policy := func(b *yaml.Node) (*yaml.Node, bool) {
		if str(b, "CachePolicyId") == cachingDisabled {
			return nil, true
		}
		name := strings.TrimPrefix(ref(get(b, "CachePolicyId")), "Ref:")
		return get(tm.resources[name], "Properties", "CachePolicyConfig"), false
	}
	ttl := func(p *yaml.Node, name string) int {
		var v int
		fmt.Sscan(str(p, name), &v)
		return v
	}
	viewerFunction := func(b *yaml.Node) string {
		assoc := items(get(b, "FunctionAssociations"))
		if len(assoc) != 1 || str(assoc[0], "EventType") != "viewer-request" {
			return ""
		}
		return ref(get(assoc[0], "FunctionARN"))
	}

	type route struct {
		name     string
		behavior *yaml.Node
	}
	routeOf := func(t *testing.T, path string, params map[string]string) route {
		for _, b := range behaviours(t, tm, dist, params) {
			if pattern := paramValue(tm, get(b, "PathPattern"), params); matchPath(pattern, path) {
				return route{pattern, b}
			}
		}
		return route{"default", get(dist, "DefaultCacheBehavior")}
	}
	// describe names where a behaviour sends a request: "bucket", "function" or "function,
	// uncached" for an origin, "A, then B on CODES" for an origin group (A the primary, B what
	// CloudFront fails over to on those status codes, in ascending order).
	originName := func(id string, b *yaml.Node) string {
		o := origins[id]
		switch {
		case isBucket(o):
			return "bucket"
		case isFunction(o):
			if _, disabled := policy(b); disabled {
				return "function, uncached"
			}
			return "function"
		}
		return fmt.Sprintf("origin %q", id)
	}
	describe := func(b *yaml.Node) string {
		id := str(b, "TargetOriginId")
		g := groups[id]
		if g == nil {
			return originName(id, b)
		}
		members := items(get(g, "Members", "Items"))
		if len(members) != 2 || str(g, "Members", "Quantity") != "2" {
			return fmt.Sprintf("origin group %q of %d members", id, len(members))
		}
		var codes []int
		for _, c := range items(get(g, "FailoverCriteria", "StatusCodes", "Items")) {
			var code int
			fmt.Sscan(c.Value, &code)
			codes = append(codes, code)
		}
		if str(g, "FailoverCriteria", "StatusCodes", "Quantity") != fmt.Sprint(len(codes)) {
			return fmt.Sprintf("origin group %q whose Quantity is not its %d codes", id, len(codes))
		}
		slices.Sort(codes)
		return fmt.Sprintf("%s, then %s on %s", originName(str(members[0], "OriginId"), b),
			originName(str(members[1], "OriginId"), b), strings.Trim(fmt.Sprint(codes), "[]"))
	}
	// checkBucketFirst checks a behaviour that serves from the bucket and fails over to the
	// function: '+' rewritten for S3, and cached as long as the answer says (a year for what is
	// immutable, no-store honoured).
	checkBucketFirst := func(t *testing.T, b *yaml.Node) {
		if viewerFunction(b) != "GetAtt:PlusRewriteFunction.FunctionARN" {
			t.Errorf("no viewer-request association with PlusRewriteFunction")
		}
		p, _ := policy(b)
		if ttl(p, "MinTTL") != 0 || ttl(p, "MaxTTL") < 31536000 {
			t.Errorf("cache policy MinTTL %d MaxTTL %d; want 0 (no-store honoured) and a year", ttl(p, "MinTTL"), ttl(p, "MaxTTL"))
		}
	}
	// checkFunction checks a behaviour that reaches the function (alone, or first), with the
	// caller's credentials (forward-auth, which also rewrites '+' for a failover to S3, and the
	// origin request policy) and a cache that keeps nothing private: MinTTL 0 (Cache-Control
	// private is honoured) and no credentials in the cache key, or no caching at all when
	// uncached is set.
	checkFunction := func(t *testing.T, b *yaml.Node, uncached bool) {
		p, disabled := policy(b)
		switch {
		case uncached && !disabled:
			t.Errorf("cache policy %s; want the managed CachingDisabled", str(b, "CachePolicyId"))
		case !disabled && (p == nil || ttl(p, "MinTTL") != 0 || ttl(p, "DefaultTTL") > 60):
			t.Errorf("cache policy MinTTL %d DefaultTTL %d; want 0 and at most 60 s", ttl(p, "MinTTL"), ttl(p, "DefaultTTL"))
		}
		for _, h := range items(get(p, "ParametersInCacheKeyAndForwardedToOrigin", "HeadersConfig", "Headers")) {
			if strings.Contains(strings.ToLower(h.Value), "authorization") {
				t.Errorf("cache policy puts %s in the cache key", h.Value)
			}
		}
		if viewerFunction(b) != "GetAtt:ForwardAuthFunction.FunctionARN" {
			t.Errorf("no viewer-request association with ForwardAuthFunction")
		}
		orp := get(tm.resources[strings.TrimPrefix(ref(get(b, "OriginRequestPolicyId")), "Ref:")],
			"Properties", "OriginRequestPolicyConfig")
		var headers []string
		for _, h := range items(get(orp, "HeadersConfig", "Headers")) {
			headers = append(headers, strings.ToLower(h.Value))
		}
		slices.Sort(headers)
		if str(orp, "HeadersConfig", "HeaderBehavior") != "whitelist" ||
			!slices.Equal(headers, []string{"x-amz-content-sha256", "x-modmirror-authorization"}) ||
			str(orp, "CookiesConfig", "CookieBehavior") != "none" || str(orp, "QueryStringsConfig", "QueryStringBehavior") != "none" {
			t.Errorf("origin request policy forwards headers %s %v; want exactly x-modmirror-authorization and x-amz-content-sha256, no cookies or query",
				str(orp, "HeadersConfig", "HeaderBehavior"), headers)
		}
	}

	// The private path patterns as a deployment would set them; none, they add no behaviour.
	private := map[string]string{"PrivatePathPattern1": "/corp.example.com/*", "PrivatePathPattern2": "/git.internal/*"}
	none := map[string]string{"PrivatePathPattern1": "", "PrivatePathPattern2": ""}
	if got, want := len(behaviours(t, tm, dist, private)), len(behaviours(t, tm, dist, none))+2; got != want {
		t.Errorf("%d behaviours with two private path patterns; want %d", got, want)
	}
	for _, params := range []map[string]string{private, none} {
		for _, b := range behaviours(t, tm, dist, params) {
			if paramValue(tm, get(b, "PathPattern"), params) == "" {
				t.Errorf("line %d: a behaviour without a path pattern", b.Line)
			}
			// CloudFront refuses an origin group on a behaviour that allows more than GET, HEAD
			// and OPTIONS (failover is for reads only).
			if groups[str(b, "TargetOriginId")] != nil {
				for _, m := range items(get(b, "AllowedMethods")) {
					if !slices.Contains([]string{"GET", "HEAD", "OPTIONS"}, m.Value) {
						t.Errorf("line %d: behaviour on origin group %s allows %s", b.Line, str(b, "TargetOriginId"), m.Value)
					}
				}
			}
		}
	}

	const (
		bucketFirst   = "bucket, then function on 403 404"
		functionFirst = "function, then bucket on 500 502 503 504"
		function      = "function"
		uncached      = "function, uncached"
	)
	tests := []struct {
		path   string
		params map[string]string
		want   string
		post   bool // POST (and the other methods) allowed; else GET and HEAD only
	}{
		// Immutable module files: the bucket, then the function for what it does not hold.
		{"/example.com/lib/@v/v1.1.0.mod", private, bucketFirst, false},
		{"/example.com/lib/@v/v1.1.0.zip", private, bucketFirst, false},
		{"/example.com/lib/@v/v1.1.0.info", private, bucketFirst, false},
		{"/example.com/!upper/!mod/@v/v1.0.0.info", private, bucketFirst, false},
		{"/example.com/incompat/@v/v2.0.0+incompatible.info", private, bucketFirst, false},
		{"/example.com/incompat/@v/v2.0.0+incompatible.zip", private, bucketFirst, false},
		{"/example.com/lib/@v/v1.2.3-rc.1.info", private, bucketFirst, false},
		{"/example.com/pseudo/@v/v0.0.0-20240102030405-abcdef123456.info", private, bucketFirst, false},
		// Lists and @latest: the function, then the bucket's stored copy when it fails.
		{"/example.com/lib/@v/list", private, functionFirst, false},
		{"/example.com/!upper/!mod/@v/list", private, functionFirst, false},
		{"/example.com/major/v2/@v/list", private, functionFirst, false},
		{"/example.com/lib/@latest", private, functionFirst, false},
		{"/example.com/!upper/!mod/@latest", private, functionFirst, false},
		// Queries: the function alone (the bucket never holds their answers).
		{"/example.com/lib/@v/main.info", private, function, false},
		{"/example.com/lib/@v/v1.info", private, function, false},
		{"/example.com/lib/@v/v1.2.info", private, function, false},
		// The checksum database: tiles are immutable (bucket first), the rest function first.
		{"/sumdb/sum.example/supported", private, functionFirst, false},
		{"/sumdb/sum.example/latest", private, functionFirst, false},
		{"/sumdb/sum.example/lookup/example.com/lib@v1.1.0", private, functionFirst, false},
		{"/sumdb/sum.example/lookup/example.com/incompat@v2.0.0+incompatible", private, functionFirst, false},
		{"/sumdb/sum.example/lookup/corp.example.com/lib@v1.1.0", private, functionFirst, false},
		{"/sumdb/sum.example/tile/8/0/000", private, bucketFirst, false},
		{"/sumdb/sum.example/tile/8/1/002.p/17", private, bucketFirst, false},
		{"/sumdb/sum.example/tile/8/data/001", private, bucketFirst, false},
		{"/sumdb/sum.example/tile/8/data/001.p/3", none, bucketFirst, false},
		// '*' crosses '/': a lookup of a module with a "tile" element takes the tiles' route.
		// Harmless: a lookup never changes once stored, and a missing one reaches the function.
		{"/sumdb/sum.example/lookup/example.com/tile/x@v1.0.0", private, bucketFirst, false},
		// Case-sensitive: an upper-case suffix is no module file (the go command never sends one).
		{"/example.com/lib/@v/v1.1.0.ZIP", none, function, false},
		{"/example.com/lib/@V/LIST", none, function, false},
		{"/SUMDB/sum.example/supported", none, function, false},
		// The function alone: health, and the bucket's root, which S3 would answer with a
		// listing (CloudFront may list the bucket, so that a missing key is a 404).
		{"/healthz", private, function, false},
		{"/", none, function, false},
		// Private module paths: the function only, whatever the file, never cached.
		{"/corp.example.com/lib/@v/v1.1.0.zip", private, uncached, false},
		{"/corp.example.com/lib/@v/v1.1.0.mod", private, uncached, false},
		{"/corp.example.com/lib/@v/v1.1.0.info", private, uncached, false},
		{"/corp.example.com/lib/@v/list", private, uncached, false},
		{"/corp.example.com/lib/@latest", private, uncached, false},
		{"/git.internal/team/!tool/@v/v2.0.0+incompatible.zip", private, uncached, false},
		// Without private path patterns, such a path is an ordinary one.
		{"/corp.example.com/lib/@v/v1.1.0.zip", none, bucketFirst, false},
		{"/corp.example.com/lib/@v/list", none, functionFirst, false},
		{"/corp.example.com/lib/@latest", none, functionFirst, false},
		// Warm: a POST, to the function only.
		{"/_mirror/warm", private, uncached, true},
		{"/_mirror/warm", none, uncached, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/private=%t", tt.path, tt.params["PrivatePathPattern1"] != ""), func(t *testing.T) {
			r := routeOf(t, tt.path, tt.params)
			if got := describe(r.behavior); got != tt.want {
				t.Fatalf("routed by %s to the %s; want the %s", r.name, got, tt.want)
			}
			var methods []string
			for _, m := range items(get(r.behavior, "AllowedMethods")) {
				methods = append(methods, m.Value)
			}
			slices.Sort(methods)
			want := []string{"GET", "HEAD"}
			if tt.post {
				want = []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}
			}
			if !slices.Equal(methods, want) {
				t.Errorf("allows %v; want %v", methods, want)
			}
			if tt.want == bucketFirst {
				checkBucketFirst(t, r.behavior)
			} else {
				checkFunction(t, r.behavior, tt.want == uncached)
			}
		})
	}
	for _, e := range items(get(dist, "CustomErrorResponses")) {
		if str(e, "ErrorCachingMinTTL") != "0" {
			t.Errorf("error %s cached for at least %s s; want 0", str(e, "ErrorCode"), str(e, "ErrorCachingMinTTL"))
		}
	}
	if ref(get(tm.root, "Outputs", "GoProxyUrl", "Value")) != "Sub:https://${Distribution.DomainName}" {
		t.Errorf("no GoProxyUrl output naming the distribution")
	}
}

// TestStaticDistribution checks the second distribution, the bucket alone: every path of a
// GOPROXY and a checksum database reaches the bucket (with '+' rewritten); private module paths,
// /_mirror/*, the root and anything else reach the "nothing" origin, the bucket under a prefix
// nothing is stored under, so they answer 404; no function, no origin group.
func TestStaticDistribution(t *testing.T) {
	tm := readTemplate(t)
	dist := get(tm.resources["StaticDistribution"], "Properties", "DistributionConfig")
	if dist == nil {
		t.Fatal("no StaticDistribution")
	}
	if get(dist, "OriginGroups") != nil {
		t.Errorf("the static distribution has origin groups")
	}
	origins := map[string]string{} // id → OriginPath
	for _, o := range items(get(dist, "Origins")) {
		oac := strings.TrimSuffix(strings.TrimPrefix(ref(get(o, "OriginAccessControlId")), "GetAtt:"), ".Id")
		if ref(get(o, "DomainName")) != "GetAtt:ModuleBucket.RegionalDomainName" || get(o, "S3OriginConfig") == nil ||
			str(tm.resources[oac], "Properties", "OriginAccessControlConfig", "OriginAccessControlOriginType") != "s3" {
			t.Errorf("origin %s is not the bucket through origin access control", str(o, "Id"))
		}
		origins[str(o, "Id")] = str(o, "OriginPath")
	}
	const nothingPrefix = "/_mirror/nothing"
	if len(origins) != 2 || origins["bucket"] != "" || origins["nothing"] != nothingPrefix {
		t.Fatalf("origins %v; want bucket (no origin path) and nothing (%s)", origins, nothingPrefix)
	}
	// Nothing in the repository writes under the nothing origin's prefix.
	root := ".."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.Contains(string(data), strings.TrimPrefix(nothingPrefix, "/")) {
				t.Errorf("%s names %s, the static distribution's empty prefix", path, nothingPrefix)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	route := func(path string, params map[string]string) (string, *yaml.Node) {
		for _, b := range behaviours(t, tm, dist, params) {
			if matchPath(paramValue(tm, get(b, "PathPattern"), params), path) {
				return str(b, "TargetOriginId"), b
			}
		}
		return str(dist, "DefaultCacheBehavior", "TargetOriginId"), get(dist, "DefaultCacheBehavior")
	}
	private := map[string]string{"PrivatePathPattern1": "/corp.example.com/*", "PrivatePathPattern2": "/git.internal/*"}
	none := map[string]string{"PrivatePathPattern1": "", "PrivatePathPattern2": ""}
	tests := []struct {
		path   string
		params map[string]string
		want   string
	}{
		{"/example.com/lib/@v/list", private, "bucket"},
		{"/example.com/lib/@latest", private, "bucket"},
		{"/example.com/lib/@v/v1.1.0.info", private, "bucket"},
		{"/example.com/lib/@v/v1.1.0.mod", private, "bucket"},
		{"/example.com/lib/@v/v1.1.0.zip", private, "bucket"},
		{"/example.com/incompat/@v/v2.0.0+incompatible.zip", private, "bucket"},
		{"/sumdb/sum.example/supported", private, "bucket"},
		{"/sumdb/sum.example/lookup/example.com/lib@v1.1.0", private, "bucket"},
		{"/sumdb/sum.example/tile/8/0/000", private, "bucket"},
		{"/sumdb/sum.example/tile/8/data/000.p/3", private, "bucket"},
		{"/corp.example.com/lib/@v/v1.1.0.zip", private, "nothing"},
		{"/corp.example.com/lib/@v/list", private, "nothing"},
		{"/git.internal/x/@latest", private, "nothing"},
		{"/corp.example.com/lib/@v/v1.1.0.zip", none, "bucket"},
		{"/_mirror/upstream/example.com/lib/@v/list", none, "nothing"},
		{"/_mirror/warm", private, "nothing"},
		{"/", none, "nothing"},
		{"/healthz", none, "nothing"},
		{"/example.com/lib/@v/main.info", none, "nothing"},
	}
	for _, tt := range tests {
		origin, b := route(tt.path, tt.params)
		if origin != tt.want {
			t.Errorf("%s (private=%t): reaches %s; want %s", tt.path, tt.params["PrivatePathPattern1"] != "", origin, tt.want)
		}
		var methods []string
		for _, m := range items(get(b, "AllowedMethods")) {
			methods = append(methods, m.Value)
		}
		if slices.Sort(methods); !slices.Equal(methods, []string{"GET", "HEAD"}) {
			t.Errorf("%s: allows %v; want GET and HEAD", tt.path, methods)
		}
		assoc := items(get(b, "FunctionAssociations"))
		rewrites := len(assoc) == 1 && ref(get(assoc[0], "FunctionARN")) == "GetAtt:PlusRewriteFunction.FunctionARN"
		if origin == "bucket" && !rewrites {
			t.Errorf("%s: reaches the bucket without PlusRewriteFunction", tt.path)
		}
		if name := strings.TrimPrefix(ref(get(b, "CachePolicyId")), "Ref:"); name != "ImmutableCachePolicy" {
			t.Errorf("%s: cache policy %s; want ImmutableCachePolicy (each object's own Cache-Control, no-store honoured)", tt.path, name)
		}
	}
	codes := map[string]bool{}
	for _, e := range items(get(dist, "CustomErrorResponses")) {
		codes[str(e, "ErrorCode")] = str(e, "ErrorCachingMinTTL") == "0"
	}
	if !codes["403"] || !codes["404"] {
		t.Errorf("static distribution: 403 and 404 not left uncached: %v", codes)
	}
	if ref(get(tm.root, "Outputs", "StaticGoProxyUrl", "Value")) != "Sub:https://${StaticDistribution.DomainName}" {
		t.Errorf("no StaticGoProxyUrl output naming the static distribution")
	}
}

// TestTemplateIAM checks least privilege: the function's role reaches its own bucket and log
// group and nothing else, CloudFront reads the bucket and invokes the function for this
// distribution only, and the bucket is private.
func TestTemplateIAM(t *testing.T) {
	tm := readTemplate(t)
	fn := tm.resources["ModmirrorFunction"]
	props := get(fn, "Properties")
	if str(fn, "Type") != "AWS::Serverless::Function" || str(props, "Runtime") != "provided.al2023" ||
		str(props, "Architectures", "0") != "arm64" || str(props, "Handler") != "bootstrap" || str(fn, "Metadata", "BuildMethod") != "makefile" {
		t.Errorf("function: want provided.al2023 on arm64, bootstrap built by the Makefile")
	}
	if get(props, "Policies") != nil {
		t.Errorf("function has SAM Policies, which add grants beyond its role")
	}
	if ref(get(props, "Role")) != "GetAtt:FunctionRole.Arn" {
		t.Errorf("function role is %q, want FunctionRole", ref(get(props, "Role")))
	}
	if ref(get(props, "Environment", "Variables", "MODMIRROR_STORE")) != "Sub:s3://${ModuleBucket}" {
		t.Errorf("function's store is not its own bucket")
	}
	for name, r := range tm.resources {
		if typ := str(r, "Type"); strings.HasPrefix(typ, "AWS::IAM::") && name != "FunctionRole" {
			t.Errorf("IAM resource %s (%s) beyond the function's role", name, typ)
		}
	}

	role := get(tm.resources["FunctionRole"], "Properties")
	if get(role, "ManagedPolicyArns") != nil || get(role, "PermissionsBoundary") != nil {
		t.Errorf("role has managed policies")
	}
	assume := items(get(role, "AssumeRolePolicyDocument", "Statement"))
	if len(assume) != 1 || str(assume[0], "Principal", "Service") != "lambda.amazonaws.com" || str(assume[0], "Action") != "sts:AssumeRole" {
		t.Errorf("role may be assumed by more than Lambda")
	}
	allowed := map[string][]string{
		"GetAtt:ModuleBucket.Arn":     {"s3:ListBucket"},
		"Sub:${ModuleBucket.Arn}/*":   {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
		"GetAtt:FunctionLogGroup.Arn": {"logs:CreateLogStream", "logs:PutLogEvents"},
	}
	grants := 0
	for _, p := range items(get(role, "Policies")) {
		for _, st := range items(get(p, "PolicyDocument", "Statement")) {
			if str(st, "Effect") != "Allow" || get(st, "NotAction") != nil || get(st, "NotResource") != nil || get(st, "Condition") != nil {
				t.Errorf("policy %s: statement is not a plain Allow", str(p, "PolicyName"))
				continue
			}
			for _, res := range items(get(st, "Resource")) {
				for _, act := range items(get(st, "Action")) {
					grants++
					if !slices.Contains(allowed[ref(res)], act.Value) {
						t.Errorf("policy %s grants %s on %s", str(p, "PolicyName"), act.Value, ref(res))
					}
				}
			}
		}
	}
	if grants < 6 {
		t.Errorf("the role grants %d action-resource pairs; the function needs at least 6", grants)
	}

	// The bucket: private, readable by this distribution only.
	pab := get(tm.resources["ModuleBucket"], "Properties", "PublicAccessBlockConfiguration")
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if str(pab, k) != "true" {
			t.Errorf("bucket public access block %s is not true", k)
		}
	}
	thisDistribution := "Sub:arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"
	bp := get(tm.resources["ModuleBucketPolicy"], "Properties")
	if ref(get(bp, "Bucket")) != "Ref:ModuleBucket" {
		t.Errorf("bucket policy is not on the bucket")
	}
	// The two distributions (the proxy's and the static one) may read objects, and list the
	// bucket so that a missing key answers 404 rather than 403 (the go command takes only 404 and
	// 410 for "not found"); nothing else may.
	sourceArns := func(st *yaml.Node) []string {
		var arns []string
		for _, a := range items(get(st, "Condition", "StringEquals", "AWS:SourceArn")) {
			arns = append(arns, ref(a))
		}
		return arns
	}
	bothDistributions := []string{thisDistribution,
		"Sub:arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${StaticDistribution}"}
	cloudFrontMay := map[string]string{
		"s3:GetObject":  "Sub:${ModuleBucket.Arn}/*",
		"s3:ListBucket": "GetAtt:ModuleBucket.Arn",
	}
	granted := map[string]bool{}
	for _, st := range items(get(bp, "PolicyDocument", "Statement")) {
		if str(st, "Effect") != "Allow" {
			continue
		}
		action := str(st, "Action")
		if str(st, "Principal", "Service") != "cloudfront.amazonaws.com" || cloudFrontMay[action] == "" ||
			ref(get(st, "Resource")) != cloudFrontMay[action] || !slices.Equal(sourceArns(st), bothDistributions) {
			t.Errorf("bucket policy statement %s allows more than the two distributions' s3:GetObject on the objects and s3:ListBucket on the bucket",
				str(st, "Sid"))
			continue
		}
		granted[action] = true
	}
	for action := range cloudFrontMay {
		if !granted[action] {
			t.Errorf("bucket policy does not grant the distributions %s", action)
		}
	}

	// CloudFront may invoke the function through its URL, for this distribution only.
	actions := map[string]bool{}
	for name, r := range tm.resources {
		if str(r, "Type") != "AWS::Lambda::Permission" {
			continue
		}
		p := get(r, "Properties")
		actions[str(p, "Action")] = true
		if str(p, "Principal") != "cloudfront.amazonaws.com" || ref(get(p, "SourceArn")) != thisDistribution ||
			ref(get(p, "FunctionName")) != "Ref:ModmirrorFunction" {
			t.Errorf("permission %s is not CloudFront's, for this distribution, on the function", name)
		}
	}
	if len(actions) != 2 || !actions["lambda:InvokeFunctionUrl"] || !actions["lambda:InvokeFunction"] {
		t.Errorf("Lambda permissions grant %v; want lambda:InvokeFunctionUrl and lambda:InvokeFunction", actions)
	}
	url := get(tm.resources["FunctionUrl"], "Properties")
	if str(url, "AuthType") != "AWS_IAM" || str(url, "InvokeMode") != "RESPONSE_STREAM" {
		t.Errorf("function URL: AuthType %q InvokeMode %q; want AWS_IAM, RESPONSE_STREAM", str(url, "AuthType"), str(url, "InvokeMode"))
	}
}

// TestTemplateParameters checks that no parameter defaults to a host, and that the function's
// environment names only variables the function reads.
func TestTemplateParameters(t *testing.T) {
	tm := readTemplate(t)
	for _, p := range []string{"Upstream", "SumDB", "PrivatePatterns", "PrivateUpstream"} {
		if tm.params[p] == nil {
			t.Errorf("no parameter %s", p)
		}
	}
	if get(tm.params["Upstream"], "Default") != nil {
		t.Errorf("Upstream has a default; it must be given")
	}
	host := regexp.MustCompile(`://|[A-Za-z0-9-]+\.[A-Za-z]{2,}`)
	for name, p := range tm.params {
		if d := str(p, "Default"); host.MatchString(d) {
			t.Errorf("parameter %s defaults to %q, a URL or host name", name, d)
		}
	}
	src, err := os.ReadFile(filepath.Join("..", "functions", "lambda", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	vars := pairs(get(tm.resources["ModmirrorFunction"], "Properties", "Environment", "Variables"))
	if len(vars) < 5 {
		t.Errorf("function environment has %d variables", len(vars))
	}
	for name := range vars {
		if !strings.Contains(string(src), name+" ") {
			t.Errorf("function environment sets %s, which functions/lambda does not document", name)
		}
	}
}

// TestTemplateBuild checks the pieces the template takes from elsewhere: the CloudFront
// Functions' code and the Makefile's SAM build hook.
func TestTemplateBuild(t *testing.T) {
	tm := readTemplate(t)
	functions := map[string]string{
		"PlusRewriteFunction": "cloudfront/plus-rewrite.js",
		"ForwardAuthFunction": "cloudfront/forward-auth.js",
	}
	for name, file := range functions {
		code, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		cf := get(tm.resources[name], "Properties")
		if str(cf, "FunctionCode") != string(code) {
			t.Errorf("template's %s code differs from infra/%s", name, file)
		}
		if str(cf, "FunctionConfig", "Runtime") != "cloudfront-js-2.0" || str(cf, "AutoPublish") != "true" {
			t.Errorf("CloudFront Function %s: want runtime cloudfront-js-2.0, published", name)
		}
	}
	for name, r := range tm.resources {
		if _, ok := functions[name]; !ok && str(r, "Type") == "AWS::CloudFront::Function" {
			t.Errorf("CloudFront Function %s has no source file the test compares it with", name)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range tm.resources {
		if str(r, "Metadata", "BuildMethod") == "makefile" &&
			!regexp.MustCompile(`(?m)^build-`+name+`:`).Match(mk) {
			t.Errorf("resource %s is built by the Makefile, which has no target build-%s", name, name)
		}
	}
}
