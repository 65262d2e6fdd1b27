// Package aiclient asks an AI provider for a short text, in the Anthropic Messages API
// format (the spec names the Claude API): POST {model, max_tokens, messages} with the key
// in x-api-key. The key is never logged and never appears in an error.
package aiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Version is the anthropic-version header the requests carry.
const Version = "2023-06-01"

// DefaultTimeout bounds one call when Client.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Client is one configured provider.
type Client struct {
	URL       string // e.g. https://api.anthropic.com/v1/messages
	Key       string
	Model     string
	MaxTokens int           // 0: 300
	Timeout   time.Duration // per call; 0: DefaultTimeout
	HTTP      *http.Client  // nil: a client with no other timeout than Timeout
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Model     string    `json:"model"`
	MaxTokens int       `json:"max_tokens"`
	System    string    `json:"system,omitempty"`
	Messages  []message `json:"messages"`
}

type response struct {
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
}

// Answer is the provider's text and the model that wrote it.
type Answer struct {
	Text  string
	Model string
}

// Ask sends one user message (with an optional system prompt) and returns the text of the
// answer. It fails on a non-2xx status, an answer without text, or the timeout.
func (c Client) Ask(ctx context.Context, system, prompt string) (Answer, error) {
	if c.URL == "" || c.Key == "" {
		return Answer{}, errors.New("aiclient: no provider configured")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	maxTokens := c.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 300
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(request{Model: c.Model, MaxTokens: maxTokens, System: system, Messages: []message{{Role: "user", Content: prompt}}})
	if err != nil {
		return Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return Answer{}, fmt.Errorf("aiclient: building the request: %w", err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-api-key", c.Key)
	req.Header.Set("anthropic-version", Version)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error carries the URL only (the key is a header): safe to return.
		return Answer{}, fmt.Errorf("aiclient: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("aiclient: reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return Answer{}, fmt.Errorf("aiclient: the provider answered %d", resp.StatusCode)
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		return Answer{}, fmt.Errorf("aiclient: the answer is not a Messages API response: %w", err)
	}
	var parts []string
	for _, b := range r.Content {
		if b.Type == "text" && strings.TrimSpace(b.Text) != "" {
			parts = append(parts, strings.TrimSpace(b.Text))
		}
	}
	if len(parts) == 0 {
		return Answer{}, errors.New("aiclient: the answer has no text")
	}
	model := r.Model
	if model == "" {
		model = c.Model
	}
	return Answer{Text: strings.Join(parts, "\n"), Model: model}, nil
}
