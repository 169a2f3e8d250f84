package captest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The Go check reads CAP-v1.2.xsd and enforces what it says: which
// elements are required, their order and how often they may occur, the
// code values (enumerations), the time pattern and the built-in types it
// uses. It understands the part of XML Schema that file uses and refuses
// to start on anything else, so a schema it cannot read is not half-checked.

// decl is an element declaration: a particle of a sequence.
type decl struct {
	name     string // local name; empty for the <any> wildcard
	anyNS    string // namespace the wildcard allows
	min, max int    // max < 0: unbounded
	typ      *typeDef
}

// typeDef is an element's content: a sequence of elements, or text.
type typeDef struct {
	sequence []decl // complex content
	complex  bool
	base     string // built-in simple type: string, dateTime, language, anyURI, integer, decimal
	enum     []string
	pattern  *regexp.Regexp
}

type schema struct {
	ns   string
	root decl
}

var capSchema = mustSchema(XSD)

// Enumerations returns the allowed values of a simple element by its path
// from the root, e.g. "alert/info/category", as the XSD lists them.
func Enumerations(path string) []string {
	d := capSchema.root
	parts := strings.Split(path, "/")
	if parts[0] != d.name {
		return nil
	}
	for _, p := range parts[1:] {
		if d.typ == nil {
			return nil
		}
		i := slices.IndexFunc(d.typ.sequence, func(c decl) bool { return c.name == p })
		if i < 0 {
			return nil
		}
		d = d.typ.sequence[i]
	}
	return d.typ.enum
}

// node is an element of a parsed document.
type node struct {
	name  xml.Name
	attrs []xml.Attr
	kids  []*node
	text  strings.Builder
}

func (n *node) attr(local string) string {
	for _, a := range n.attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func parseTree(doc []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) && root != nil && len(stack) == 0 {
				return root, nil
			}
			return nil, fmt.Errorf("not well-formed XML: %w", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name, attrs: tok.Attr}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.kids = append(top.kids, n)
			} else if root == nil {
				root = n
			} else {
				return nil, fmt.Errorf("more than one root element")
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(tok)
			}
		}
	}
}

const xsdNS = "http://www.w3.org/2001/XMLSchema"

func mustSchema(xsd []byte) *schema {
	s, err := readSchema(xsd)
	if err != nil {
		panic(fmt.Sprintf("captest: CAP-v1.2.xsd: %v", err))
	}
	return s
}

func readSchema(xsd []byte) (*schema, error) {
	top, err := parseTree(xsd)
	if err != nil {
		return nil, err
	}
	if top.name.Space != xsdNS || top.name.Local != "schema" {
		return nil, fmt.Errorf("root is %s, want xs:schema", top.name.Local)
	}
	s := &schema{ns: top.attr("targetNamespace")}
	global := map[string]*node{}
	for _, k := range top.kids {
		if k.name.Local != "element" {
			return nil, fmt.Errorf("top-level <%s> is not understood", k.name.Local)
		}
		global[k.attr("name")] = k
	}
	alert, ok := global["alert"]
	if !ok {
		return nil, fmt.Errorf("no top-level alert element")
	}
	s.root, err = readDecl(alert, global)
	return s, err
}

func occurs(v string, def int) (int, error) {
	switch v {
	case "":
		return def, nil
	case "unbounded":
		return -1, nil
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
		return 0, fmt.Errorf("occurrence %q", v)
	}
	return n, nil
}

func readDecl(n *node, global map[string]*node) (decl, error) {
	var d decl
	var err error
	if d.min, err = occurs(n.attr("minOccurs"), 1); err != nil {
		return d, err
	}
	if d.max, err = occurs(n.attr("maxOccurs"), 1); err != nil {
		return d, err
	}
	if n.name.Local == "any" {
		d.anyNS = n.attr("namespace")
		if n.attr("processContents") != "lax" {
			return d, fmt.Errorf("<any> that is not lax is not understood")
		}
		return d, nil
	}
	if ref := n.attr("ref"); ref != "" {
		g, ok := global[localName(ref)]
		if !ok {
			return d, fmt.Errorf("ref %q: no such element", ref)
		}
		target, err := readDecl(g, global)
		target.min, target.max = d.min, d.max
		return target, err
	}
	d.name = n.attr("name")
	if t := n.attr("type"); t != "" {
		d.typ, err = builtin(t)
		return d, err
	}
	for _, k := range n.kids {
		switch k.name.Local {
		case "annotation":
		case "complexType":
			d.typ, err = readComplex(k, global)
		case "simpleType":
			d.typ, err = readSimple(k)
		default:
			err = fmt.Errorf("element %s: <%s> is not understood", d.name, k.name.Local)
		}
		if err != nil {
			return d, err
		}
	}
	if d.typ == nil {
		return d, fmt.Errorf("element %s has no type", d.name)
	}
	return d, nil
}

func localName(qname string) string {
	if _, local, ok := strings.Cut(qname, ":"); ok {
		return local
	}
	return qname
}

func builtin(qname string) (*typeDef, error) {
	switch base := localName(qname); base {
	case "string", "dateTime", "language", "anyURI", "integer", "decimal":
		return &typeDef{base: base}, nil
	default:
		return nil, fmt.Errorf("type %s is not understood", qname)
	}
}

func readComplex(n *node, global map[string]*node) (*typeDef, error) {
	if len(n.kids) != 1 || n.kids[0].name.Local != "sequence" {
		return nil, fmt.Errorf("complexType other than one sequence is not understood")
	}
	t := &typeDef{complex: true}
	for _, k := range n.kids[0].kids {
		if k.name.Local != "element" && k.name.Local != "any" {
			return nil, fmt.Errorf("<%s> in a sequence is not understood", k.name.Local)
		}
		d, err := readDecl(k, global)
		if err != nil {
			return nil, err
		}
		t.sequence = append(t.sequence, d)
	}
	return t, nil
}

func readSimple(n *node) (*typeDef, error) {
	if len(n.kids) != 1 || n.kids[0].name.Local != "restriction" {
		return nil, fmt.Errorf("simpleType other than a restriction is not understood")
	}
	r := n.kids[0]
	t, err := builtin(r.attr("base"))
	if err != nil {
		return nil, err
	}
	for _, f := range r.kids {
		switch f.name.Local {
		case "enumeration":
			t.enum = append(t.enum, f.attr("value"))
		case "pattern":
			// XML Schema patterns match the whole value.
			if t.pattern, err = regexp.Compile(`^(?:` + f.attr("value") + `)$`); err != nil {
				return nil, fmt.Errorf("pattern %q: %w", f.attr("value"), err)
			}
		default:
			return nil, fmt.Errorf("facet <%s> is not understood", f.name.Local)
		}
	}
	return t, nil
}

// SchemaErrors lists where doc breaks CAP-v1.2.xsd; none means valid.
func SchemaErrors(doc []byte) []string {
	root, err := parseTree(doc)
	if err != nil {
		return []string{err.Error()}
	}
	s := capSchema
	if root.name.Space != s.ns || root.name.Local != s.root.name {
		return []string{fmt.Sprintf("root element is {%s}%s, want {%s}%s", root.name.Space, root.name.Local, s.ns, s.root.name)}
	}
	var errs []string
	s.check(root, s.root.typ, root.name.Local, &errs)
	return errs
}

func (s *schema) check(n *node, t *typeDef, path string, errs *[]string) {
	if !t.complex {
		if len(n.kids) > 0 {
			*errs = append(*errs, fmt.Sprintf("%s: holds elements, want text", path))
			return
		}
		if msg := t.checkValue(n.text.String()); msg != "" {
			*errs = append(*errs, fmt.Sprintf("%s: %s", path, msg))
		}
		return
	}
	if strings.TrimSpace(n.text.String()) != "" {
		*errs = append(*errs, fmt.Sprintf("%s: text where only elements are allowed", path))
	}
	i := 0
	for _, d := range t.sequence {
		count := 0
		for i < len(n.kids) && (d.max < 0 || count < d.max) && s.matches(d, n.kids[i]) {
			if d.typ != nil { // a lax wildcard is not checked
				s.check(n.kids[i], d.typ, path+"/"+d.name, errs)
			}
			i++
			count++
		}
		if count < d.min {
			*errs = append(*errs, fmt.Sprintf("%s: <%s> is required here (found %d, want at least %d)", path, d.name, count, d.min))
		}
	}
	for ; i < len(n.kids); i++ {
		k := n.kids[i]
		*errs = append(*errs, fmt.Sprintf("%s: <%s> is not allowed here (unknown, repeated too often or out of order)", path, k.name.Local))
	}
}

func (s *schema) matches(d decl, n *node) bool {
	if d.name == "" {
		return n.name.Space == d.anyNS
	}
	// elementFormDefault="qualified": every element is in the CAP namespace.
	return n.name.Space == s.ns && n.name.Local == d.name
}

var languageRE = regexp.MustCompile(`^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$`)

// checkValue checks a text value against its simple type; "" means valid.
func (t *typeDef) checkValue(raw string) string {
	v := raw
	if t.base != "string" {
		// Every built-in but string collapses white space first.
		v = strings.Join(strings.Fields(raw), " ")
	}
	if len(t.enum) > 0 && !slices.Contains(t.enum, v) {
		return fmt.Sprintf("%q is not one of %s", v, strings.Join(t.enum, ", "))
	}
	if t.pattern != nil && !t.pattern.MatchString(v) {
		return fmt.Sprintf("%q does not match the pattern %s", v, t.pattern)
	}
	switch t.base {
	case "dateTime":
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return fmt.Sprintf("%q is not a date and time: %v", v, err)
		}
	case "language":
		if !languageRE.MatchString(v) {
			return fmt.Sprintf("%q is not a language tag", v)
		}
	case "anyURI":
		if _, err := url.Parse(v); err != nil {
			return fmt.Sprintf("%q is not a URI: %v", v, err)
		}
	case "integer":
		if _, ok := new(big.Int).SetString(v, 10); !ok {
			return fmt.Sprintf("%q is not an integer", v)
		}
	case "decimal":
		if _, ok := new(big.Rat).SetString(v); !ok || strings.ContainsAny(v, "eE/") {
			return fmt.Sprintf("%q is not a decimal", v)
		}
	}
	return ""
}
