package loadtest

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"time"
)

// Table renders results as a Markdown table, one row per system, with the
// ratio of the first result's throughput (the system under test) to each
// other system's loaded the same way (closed or open loop). Latencies are
// over all requests of every kind. The RSS columns give the smallest and
// largest RSS sampled during the measured window and the largest distance
// of a sample from their mean. Missing figures are "—".
func Table(results []Result) string {
	var b strings.Builder
	b.WriteString("| system | req/s | p50 | p90 | p99 | p99.9 | max | errors | wrong | server RSS min / max | RSS ± of mean | server CPU (cores) | client CPU (cores) | " + ratioHeader(results) + " |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, r := range results {
		rss, dev, cpu, client := "—", "—", "—", "—"
		if r.Server != nil && r.Server.RSSSpread.Samples > 0 {
			sp := r.Server.RSSSpread
			rss = fmt.Sprintf("%s / %s", mib(sp.Min), mib(sp.Max))
			dev = fmt.Sprintf("%.1f %%", sp.Deviation)
		}
		if r.Server != nil {
			cpu = fmt.Sprintf("%.2f", r.Server.Cores)
		}
		if r.Client != nil {
			client = fmt.Sprintf("%.2f", r.Client.Cores)
		}
		ratio := "1.00×"
		if i > 0 {
			ratio = "—"
			if r.Throughput() > 0 && (r.Rate > 0) == (results[0].Rate > 0) {
				ratio = fmt.Sprintf("%.2f×", results[0].Throughput()/r.Throughput())
			}
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |\n",
			r.Target, r.Throughput(), ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max),
			r.Errors, wrong(r), rss, dev, cpu, client, ratio)
	}
	return b.String()
}

// KindTable renders, one row per system, the requests of each kind answered
// in the measured window and their p99 latency. For fresh tokens it also
// gives how many carried a token the server had never been sent.
func KindTable(results []Result) string {
	var kinds []string
	for _, k := range Kinds {
		for _, r := range results {
			if slices.ContainsFunc(r.Kinds, func(kr KindResult) bool { return kr.Kind == k }) {
				kinds = append(kinds, k)
				break
			}
		}
	}
	var b strings.Builder
	b.WriteString("| system |")
	for _, k := range kinds {
		b.WriteString(" " + k + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(kinds)) + "\n")
	for _, r := range results {
		b.WriteString("| " + r.Target + " |")
		for _, k := range kinds {
			i := slices.IndexFunc(r.Kinds, func(kr KindResult) bool { return kr.Kind == k })
			if i < 0 {
				b.WriteString(" — |")
				continue
			}
			kr := r.Kinds[i]
			fresh := ""
			if k == KindFresh {
				fresh = fmt.Sprintf(" (%d new)", r.FreshFirst)
			}
			fmt.Fprintf(&b, " %d%s · p99 %s |", kr.Requests, fresh, ms(kr.Latency.P99))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// WritesTable renders, for the results that counted decision cache
// lookups or ran a write stream, read throughput and p99 beside the cache
// hit ratio and the writes; "" when none did. The share is each row's read
// throughput over that of the first such row (the run without writes).
func WritesTable(results []Result) string {
	var rows []Result
	for _, r := range results {
		if r.Cache != nil || r.Writes != nil {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("| system | read req/s | share of " + rows[0].Target + " | p99 | cache hits | writes/s asked / done | write p99 | failed writes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		hits, writes, wp99, failed := "—", "—", "—", "—"
		if r.Cache != nil {
			hits = fmt.Sprintf("%.1f %%", 100*r.Cache.HitRatio())
		}
		if w := r.Writes; w != nil {
			writes = fmt.Sprintf("%.0f / %.1f", w.Rate, w.Achieved(r.Elapsed))
			wp99, failed = ms(w.Latency.P99), fmt.Sprint(w.Failed)
		}
		share := "—"
		if rows[0].Throughput() > 0 {
			share = fmt.Sprintf("%.0f %%", 100*r.Throughput()/rows[0].Throughput())
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s |\n", r.Target, r.Throughput(), share, ms(r.Latency.P99), hits, writes, wp99, failed)
	}
	return b.String()
}

func ratioHeader(results []Result) string {
	if len(results) == 0 {
		return "ratio"
	}
	return results[0].Target + " req/s ÷ system's"
}

func wrong(r Result) string {
	if !r.Verified {
		return "n/a"
	}
	return fmt.Sprint(r.Wrong)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// WriteSVG writes a horizontal bar chart of the results' throughput, with
// p99 latency in each label, as a standalone SVG document.
func WriteSVG(w io.Writer, title string, results []Result) error {
	const width, left, barH, gap, top = 760, 170, 28, 14, 44
	height := top + len(results)*(barH+gap) + 20
	var peak float64
	for _, r := range results {
		peak = max(peak, r.Throughput())
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	colors := []string{"#2b6cb0", "#c05621", "#718096", "#2f855a"}
	for i, r := range results {
		y := top + i*(barH+gap)
		bw := 0.0
		if peak > 0 {
			bw = r.Throughput() / peak * float64(width-left-200)
		}
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+barH/2+5, html.EscapeString(r.Target))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, bw, barH, colors[i%len(colors)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.0f req/s, p99 %s</text>`+"\n", float64(left)+bw+6, y+barH/2+5, r.Throughput(), ms(r.Latency.P99))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
