package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"github.com/shouwang/shouwang/api"
	"github.com/shouwang/shouwang/metrics"
	"github.com/shouwang/shouwang/storage/storagetest"
)

// newDocApp builds the API as the service does (metrics on, so /metrics is
// routed), on a real SQLite database so bearer tokens are really checked.
func newDocApp(t *testing.T) *fiber.App {
	t.Helper()
	db := storagetest.SQLite(t)
	return api.New(api.Deps{
		DB: db, Tokens: &api.Tokens{DB: db, Now: time.Now}, Metrics: metrics.New(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	})
}

// fetchDoc gets /v1/openapi.yaml the way a client generator would: no token.
func fetchDoc(t *testing.T, app *fiber.App, authorization string) []byte {
	t.Helper()
	req := httptest.NewRequest("GET", "/v1/openapi.yaml", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, body := answer(t, app, req)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.yaml (Authorization %q) = %d, want 200: %s", authorization, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("GET /v1/openapi.yaml: Content-Type %q, want application/yaml", ct)
	}
	return body
}

func loadDoc(t *testing.T, src []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(src)
	if err != nil {
		t.Fatalf("api/openapi.yaml does not load (a broken $ref?): %v", err)
	}
	return doc
}

// TestOpenAPIServedWithoutToken: anyone may read the document, even with a
// token that is not valid, while the rest of /v1 refuses such a token.
func TestOpenAPIServedWithoutToken(t *testing.T) {
	app := newDocApp(t)
	file, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := fetchDoc(t, app, ""); !bytes.Equal(got, file) {
		t.Fatalf("GET /v1/openapi.yaml served %d bytes that are not api/openapi.yaml (%d bytes)", len(got), len(file))
	}
	fetchDoc(t, app, "Bearer not-a-token")

	req := httptest.NewRequest("GET", "/v1/taxonomy", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := app.Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("GET /v1/taxonomy with a bad token = %d, want 401 (is the /v1 group still authenticated?)", resp.StatusCode)
	}
}

// TestOpenAPIDocumentIsValid checks the document with a real OpenAPI
// library: the structure, that every $ref resolves, that every path
// parameter is declared, and that every example fits its schema.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	app := newDocApp(t)
	doc := loadDoc(t, fetchDoc(t, app, ""))
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi: %q, want 3.0.3", doc.OpenAPI)
	}
}

// TestOpenAPICoversEveryRoute fails when a route is added without being
// documented, or documented without being routed.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	app := newDocApp(t)
	doc := loadDoc(t, fetchDoc(t, app, ""))

	routed := map[string]string{} // "GET /v1/x/{id}" → fiber's path
	for _, r := range app.GetRoutes(true) {
		if r.Method == fiber.MethodHead {
			continue // fiber adds HEAD to every GET
		}
		p, err := openAPIPath(r.Path)
		if err != nil {
			t.Errorf("route %s %s: %v", r.Method, r.Path, err)
			continue
		}
		routed[r.Method+" "+p] = r.Path
	}
	documented := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+p] = true
		}
	}

	var missingInDoc, missingInRouter []string
	for k, fiberPath := range routed {
		if !documented[k] {
			missingInDoc = append(missingInDoc, fmt.Sprintf("%s (registered as %q)", k, fiberPath))
		}
	}
	for k := range documented {
		if _, ok := routed[k]; !ok {
			missingInRouter = append(missingInRouter, k)
		}
	}
	sort.Strings(missingInDoc)
	sort.Strings(missingInRouter)
	if len(missingInDoc) > 0 {
		t.Errorf("routes served but not documented: add each to api/openapi.yaml (paths, method, parameters, responses):\n  %s",
			strings.Join(missingInDoc, "\n  "))
	}
	if len(missingInRouter) > 0 {
		t.Errorf("operations in api/openapi.yaml that no route serves: remove them, or register the route in api.New:\n  %s",
			strings.Join(missingInRouter, "\n  "))
	}
	if len(routed) < 50 {
		t.Errorf("only %d routes found: is the app built as the service builds it (metrics on)?", len(routed))
	}
}

// openAPIPath turns a fiber route path into an OpenAPI path template:
// ":id" becomes "{id}" and an escaped "\:" a literal colon
// ("responders\:import" is "responders:import").
func openAPIPath(fiberPath string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(fiberPath); i++ {
		c := fiberPath[i]
		switch {
		case c == '\\' && i+1 < len(fiberPath):
			i++
			b.WriteByte(fiberPath[i])
		case c == ':':
			j := i + 1
			for j < len(fiberPath) && !strings.ContainsRune("/-.:\\?+*", rune(fiberPath[j])) {
				j++
			}
			if j == i+1 || (j < len(fiberPath) && fiberPath[j] == '?') {
				return "", fmt.Errorf("an optional or unnamed parameter has no OpenAPI path: register one route per shape")
			}
			b.WriteString("{" + fiberPath[i+1:j] + "}")
			i = j - 1
		case c == '*' || c == '+':
			return "", fmt.Errorf("a wildcard has no OpenAPI path: register explicit routes")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// answer sends req to app and reads the whole answer.
func answer(t *testing.T, app *fiber.App, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := app.Test(req, 10_000)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the answer to %s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp, raw
}
