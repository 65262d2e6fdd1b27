package drift

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/optralis/optralis/internal/aiclient"
)

// MaxExplanation bounds a stored explanation (characters).
const MaxExplanation = 2000

// Template is the explanation written without a provider, or when it fails: the figures
// in one sentence, e.g. "CPU averaged 90.0 % over the last hour against a 7-day mean of
// 20.1 % (σ 2.3, p95 24.0 %, 168 hourly averages): 30.4 standard deviations above normal."
// σ is the one the z-score was computed with (at least the metric's floor).
func Template(m Metric, s Stats, v Verdict) string {
	if s.Mean == nil || s.Current == nil || v.Z == nil {
		return ""
	}
	dir := "above"
	if *v.Z < 0 {
		dir = "below"
	}
	p95 := ""
	if s.P95 != nil {
		p95 = fmt.Sprintf(", p95 %.1f%s", *s.P95, m.Unit)
	}
	z := *v.Z
	if z < 0 {
		z = -z
	}
	return fmt.Sprintf("%s averaged %.1f%s over the last hour against a 7-day mean of %.1f%s (σ %.1f%s, %d hourly averages): %.1f standard deviations %s normal.",
		m.Label, *s.Current, m.Unit, *s.Mean, m.Unit, v.Stddev, p95, s.Points, z, dir)
}

// System is the instruction the provider is given.
const System = "You explain metric drifts detected on monitored Windows and Linux machines to the IT technicians " +
	"of a managed service provider. Answer in at most three sentences of plain text, without markdown: " +
	"what the change likely means and what to check first."

// Prompt is the question asked about one drift. It holds the figures and the machine's
// operating system, never a hostname, client or user name.
func Prompt(m Metric, s Stats, v Verdict, os, trigger string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Metric: %s (%s) on a %s machine.\n", m.Label, strings.TrimSpace(m.Unit), nonEmpty(os, "unknown-OS"))
	if s.Current != nil {
		fmt.Fprintf(&b, "Last hour average: %.2f%s\n", *s.Current, m.Unit)
	}
	if s.Mean != nil {
		fmt.Fprintf(&b, "7-day baseline: mean %.2f%s, standard deviation %.2f", *s.Mean, m.Unit, v.Stddev)
		if s.P95 != nil {
			fmt.Fprintf(&b, ", 95th percentile %.2f%s", *s.P95, m.Unit)
		}
		fmt.Fprintf(&b, ", %d hourly averages.\n", s.Points)
	}
	if v.Z != nil {
		fmt.Fprintf(&b, "z-score: %.2f (%s).\n", *v.Z, v.Severity)
	}
	if trigger == "worsened" {
		b.WriteString("The drift was already detected and has worsened.\n")
	} else {
		b.WriteString("The drift is new.\n")
	}
	b.WriteString("Explain this drift briefly.")
	return b.String()
}

func nonEmpty(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// Provider adapts an AI client to Explainer.
type Provider struct{ Client aiclient.Client }

// Explain asks the provider.
func (p Provider) Explain(ctx context.Context, prompt string) (string, string, error) {
	a, err := p.Client.Ask(ctx, System, prompt)
	return a.Text, a.Model, err
}

// explain asks the provider about each trigger of the batch, within the run's call limit
// and budget; the others keep the template.
func (r *run) explain(ctx context.Context, rows []*row, res *Result) {
	for _, rw := range rows {
		if rw.trigger == "" {
			continue
		}
		switch {
		case r.d.AI == nil:
			rw.outcome = "template"
			continue
		case res.AICalls >= r.d.MaxAICalls:
			rw.outcome = "limit"
			continue
		case r.d.Wall().After(r.stopAt):
			rw.outcome = "budget"
			continue
		}
		res.AICalls++
		text, model, err := r.d.AI.Explain(ctx, Prompt(rw.metric, rw.stats, rw.verdict, rw.m.os, rw.trigger))
		text = strings.TrimSpace(text)
		if err == nil && text == "" {
			err = fmt.Errorf("empty explanation")
		}
		if err != nil {
			res.AIFailures++
			rw.outcome, rw.aiErr = "ai_failed", err.Error()
			r.d.Logger.WarnContext(ctx, "drift: the AI provider failed, the template explains the drift",
				"machine_id", rw.m.id, "metric", rw.metric.Type, "error", err.Error())
			continue
		}
		text = truncate(text, MaxExplanation)
		rw.outcome, rw.aiText, rw.aiModel, rw.explanation = "ai", text, model, &text
	}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
