package app_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The OpenAPI document, loaded and validated once for the package's tests.
var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

func loadContract() (routers.Router, error) {
	contractOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile("../../api/openapi.json")
		if err != nil {
			contractErr = err
			return
		}
		// The installer is a shell script: its body is text, like text/plain's.
		openapi3filter.RegisterBodyDecoder("text/x-shellscript", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			b, err := io.ReadAll(r)
			return string(b), err
		})
		// Servers would make the router match on host; the handlers are mounted at "/".
		doc.Servers = nil
		if err := doc.Validate(context.Background()); err != nil {
			contractErr = err
			return
		}
		contractRouter, contractErr = legacy.NewRouter(doc)
	})
	return contractRouter, contractErr
}

// TestOpenAPIDocumentIsValid: api/openapi.json is a valid OpenAPI 3 document (every $ref
// resolves, every schema is well formed), and every operation describes its success
// response with a schema — the dashboard team generates its client from it.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	if _, err := loadContract(); err != nil {
		t.Fatalf("api/openapi.json: %v", err)
	}
	doc, _ := openapi3.NewLoader().LoadFromFile("../../api/openapi.json")
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ok := false
			for code, resp := range op.Responses.Map() {
				if len(code) == 3 && code[0] == '2' {
					if code == "204" || (resp.Value != nil && len(resp.Value.Content) > 0) {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("%s %s: no 2xx response with content (or 204)", method, path)
			}
			if (method == http.MethodPut || method == http.MethodPatch) && op.RequestBody == nil {
				t.Errorf("%s %s: no request body schema", method, path)
			}
		}
	}
}

// contract wraps h so that every request to a documented route, and its response, is
// validated against api/openapi.json: a handler answering a shape the document does not
// describe (a missing required field, a wrong type, an undocumented status) fails t.
// Authentication is not re-checked here (the guards are tested on their own).
func contract(t *testing.T, h http.Handler) http.Handler {
	t.Helper()
	router, err := loadContract()
	if err != nil {
		t.Fatalf("api/openapi.json: %v", err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true,
		MultiError: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := router.FindRoute(r)
		if err != nil {
			h.ServeHTTP(w, r)
			return
		}
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)

		in := &openapi3filter.RequestValidationInput{Request: r.Clone(r.Context()), PathParams: params, Route: route, Options: opts}
		in.Request.Body = io.NopCloser(bytes.NewReader(body))
		// A request the document calls invalid must have been refused (4xx); one it
		// accepts is the handler's to judge.
		if reqErr := openapi3filter.ValidateRequest(r.Context(), in); reqErr != nil && rec.Code < 400 {
			t.Errorf("contract: %s %s was accepted (%d) but api/openapi.json refuses it: %v", r.Method, r.URL.Path, rec.Code, reqErr)
		}
		if rec.Code < 500 && rec.Header().Get("Content-Encoding") == "" {
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Options: opts}
			out.SetBodyBytes(rec.Body.Bytes())
			if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
				t.Errorf("contract: %s %s answered %d %s\nwhich api/openapi.json does not describe: %v", r.Method, r.URL.Path, rec.Code,
					truncate(rec.Body.String(), 400), err)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
