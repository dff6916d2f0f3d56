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
	root      *yaml.Node
	params    map[string]*yaml.Node
	resources map[string]*yaml.Node
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
	tm := &template{root: doc.Content[0], params: map[string]*yaml.Node{}, resources: map[string]*yaml.Node{}}
	if p := get(tm.root, "Parameters"); p != nil {
		for k, v := range pairs(p) {
			tm.params[k] = v
		}
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
// a !Sub one of those (or a variable of its own map). It also returns how many references it
// checked.
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
`))
	problems, _ = checkReferences(broken)
	want := []string{"names no parameter or resource", "Nope", "Gone", "Absent", "unknown tag !GetAttr", "Missing"}
	joined := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("checker missed %q in the broken template; it found:\n%s", w, joined)
		}
	}
	if len(problems) != 6 {
		t.Errorf("checker found %d problems in the broken template, want 6 (${X} of the template and its map):\n%s", len(problems), joined)
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
	policy := func(b *yaml.Node) *yaml.Node {
		name := strings.TrimPrefix(ref(get(b, "CachePolicyId")), "Ref:")
		return get(tm.resources[name], "Properties", "CachePolicyConfig")
	}
	ttl := func(p *yaml.Node, name string) int {
		var v int
		fmt.Sscan(str(p, name), &v)
		return v
	}

	type route struct {
		name     string
		behavior *yaml.Node
	}
	routeOf := func(path string) route {
		for _, b := range items(get(dist, "CacheBehaviors")) {
			if matchPath(str(b, "PathPattern"), path) {
				return route{str(b, "PathPattern"), b}
			}
		}
		return route{"default", get(dist, "DefaultCacheBehavior")}
	}
	// checkBucketFirst checks a behaviour that serves from the bucket and fails over to the
	// function on 403 and 404, with '+' rewritten for S3.
	checkBucketFirst := func(t *testing.T, b *yaml.Node) {
		g := groups[str(b, "TargetOriginId")]
		if g == nil {
			t.Fatalf("targets %q, not an origin group", str(b, "TargetOriginId"))
		}
		codes := []string{}
		for _, c := range items(get(g, "FailoverCriteria", "StatusCodes", "Items")) {
			codes = append(codes, c.Value)
		}
		slices.Sort(codes)
		members := items(get(g, "Members", "Items"))
		if !slices.Equal(codes, []string{"403", "404"}) || len(members) != 2 ||
			!isBucket(origins[str(members[0], "OriginId")]) || !isFunction(origins[str(members[1], "OriginId")]) {
			t.Errorf("origin group %s: failover on %v from %d members; want the bucket, then the function, on 403 and 404",
				str(g, "Id"), codes, len(members))
		}
		assoc := items(get(b, "FunctionAssociations"))
		if len(assoc) != 1 || str(assoc[0], "EventType") != "viewer-request" ||
			ref(get(assoc[0], "FunctionARN")) != "GetAtt:PlusRewriteFunction.FunctionARN" {
			t.Errorf("no viewer-request association with PlusRewriteFunction")
		}
		p := policy(b)
		if ttl(p, "MinTTL") != 0 || ttl(p, "MaxTTL") < 31536000 {
			t.Errorf("cache policy MinTTL %d MaxTTL %d; want 0 (no-store honoured) and a year", ttl(p, "MinTTL"), ttl(p, "MaxTTL"))
		}
	}
	checkFunction := func(t *testing.T, b *yaml.Node) {
		if !isFunction(origins[str(b, "TargetOriginId")]) {
			t.Errorf("targets %q, not the function's URL with origin access control", str(b, "TargetOriginId"))
		}
		p := policy(b)
		if p == nil || ttl(p, "MinTTL") != 0 || ttl(p, "DefaultTTL") > 60 {
			t.Errorf("cache policy MinTTL %d DefaultTTL %d; want 0 and at most 60 s", ttl(p, "MinTTL"), ttl(p, "DefaultTTL"))
		}
	}

	tests := []struct {
		path   string
		bucket bool
	}{
		{"/example.com/lib/@v/v1.1.0.mod", true},
		{"/example.com/lib/@v/v1.1.0.zip", true},
		{"/example.com/lib/@v/v1.1.0.info", true},
		{"/example.com/!upper/!mod/@v/v1.0.0.info", true},
		{"/example.com/incompat/@v/v2.0.0+incompatible.info", true},
		{"/example.com/incompat/@v/v2.0.0+incompatible.zip", true},
		{"/example.com/lib/@v/v1.2.3-rc.1.info", true},
		{"/example.com/pseudo/@v/v0.0.0-20240102030405-abcdef123456.info", true},
		{"/example.com/lib/@v/list", false},
		{"/example.com/lib/@latest", false},
		{"/example.com/lib/@v/main.info", false},
		{"/example.com/lib/@v/v1.info", false},
		{"/example.com/lib/@v/v1.2.info", false},
		{"/sumdb/sum.example/supported", false},
		{"/sumdb/sum.example/lookup/example.com/lib@v1.1.0", false},
		{"/sumdb/sum.example/tile/8/0/000", false},
		{"/sumdb/sum.example/latest", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := routeOf(tt.path)
			if tt.bucket != (r.name != "default") {
				t.Fatalf("routed by %s; want the bucket first: %v", r.name, tt.bucket)
			}
			if slices.ContainsFunc(items(get(r.behavior, "AllowedMethods")), func(n *yaml.Node) bool { return n.Value != "GET" && n.Value != "HEAD" }) {
				t.Errorf("allows methods beyond GET and HEAD")
			}
			if tt.bucket {
				checkBucketFirst(t, r.behavior)
			} else {
				checkFunction(t, r.behavior)
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
	for _, st := range items(get(bp, "PolicyDocument", "Statement")) {
		if str(st, "Effect") != "Allow" {
			continue
		}
		if str(st, "Principal", "Service") != "cloudfront.amazonaws.com" || str(st, "Action") != "s3:GetObject" ||
			ref(get(st, "Resource")) != "Sub:${ModuleBucket.Arn}/*" ||
			ref(get(st, "Condition", "StringEquals", "AWS:SourceArn")) != thisDistribution {
			t.Errorf("bucket policy allows more than this distribution's s3:GetObject")
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
// Function's code and the Makefile's SAM build hook.
func TestTemplateBuild(t *testing.T) {
	tm := readTemplate(t)
	code, err := os.ReadFile("cloudfront/plus-rewrite.js")
	if err != nil {
		t.Fatal(err)
	}
	cf := get(tm.resources["PlusRewriteFunction"], "Properties")
	if str(cf, "FunctionCode") != string(code) {
		t.Errorf("template's PlusRewriteFunction code differs from infra/cloudfront/plus-rewrite.js")
	}
	if str(cf, "FunctionConfig", "Runtime") != "cloudfront-js-2.0" || str(cf, "AutoPublish") != "true" {
		t.Errorf("CloudFront Function: want runtime cloudfront-js-2.0, published")
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
