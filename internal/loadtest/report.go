package loadtest

import (
	"fmt"
	"html"
	"io"
	"math"
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
// hit ratio and the writes; "" when none did. A run with writes is paired
// with the last run without them before it, and its share is its read
// throughput over that run's; with more than one pair (say --systems
// trellis,trellis,trellis, each run then again with the writes) a last
// line gives the median share, which the machine's drift between pairs
// moves less than any one pair's.
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
	var (
		b      strings.Builder
		base   Result // the last run without writes
		shares []float64
	)
	b.WriteString("| system | read req/s | share of the run before without writes | p99 | cache hits | writes/s asked / done | write p99 | failed writes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		hits, writes, wp99, failed, share := "—", "—", "—", "—", "—"
		if r.Cache != nil {
			hits = fmt.Sprintf("%.1f %%", 100*r.Cache.HitRatio())
		}
		if w := r.Writes; w != nil {
			writes = fmt.Sprintf("%.0f / %.1f", w.Rate, w.Achieved(r.Elapsed))
			wp99, failed = ms(w.Latency.P99), fmt.Sprint(w.Failed)
			if base.Throughput() > 0 {
				shares = append(shares, r.Throughput()/base.Throughput())
				share = fmt.Sprintf("%.0f %%", 100*shares[len(shares)-1])
			}
		} else {
			base = r
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %s |\n", r.Target, r.Throughput(), share, ms(r.Latency.P99), hits, writes, wp99, failed)
	}
	if len(shares) > 1 {
		slices.Sort(shares)
		m := shares[len(shares)/2]
		if len(shares)%2 == 0 {
			m = (shares[len(shares)/2-1] + m) / 2
		}
		fmt.Fprintf(&b, "\nMedian share of the %d pairs: %.0f %% (lowest %.0f %%, highest %.0f %%).\n", len(shares), 100*m, 100*shares[0], 100*shares[len(shares)-1])
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
	svgStart(&b, width, height, 13, title)
	for i, r := range results {
		y := top + i*(barH+gap)
		bw := 0.0
		if peak > 0 {
			bw = r.Throughput() / peak * float64(width-left-200)
		}
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+barH/2+5, html.EscapeString(r.Target))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, bw, barH, chartColor(i))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.0f req/s, p99 %s</text>`+"\n", float64(left)+bw+6, y+barH/2+5, r.Throughput(), ms(r.Latency.P99))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteTimelineSVG writes a line chart of the results' p99 latency second
// by second over the measured window (Result.Timeline), one line per
// result, as a standalone SVG document.
func WriteTimelineSVG(w io.Writer, title string, results []Result) error {
	const width, left, right, top, plotH, legendRow = 760, 60, 20, 40, 260.0, 16
	bottom := 44 + (len(results)+1)/2*legendRow // the axis title, then the legend, two a row
	height := top + int(plotH) + bottom
	plotW := float64(width - left - right)
	seconds, peak := 1, time.Millisecond
	for _, r := range results {
		seconds = max(seconds, len(r.Timeline))
		for _, s := range r.Timeline {
			peak = max(peak, s.P99)
		}
	}
	ceiling := niceCeiling(float64(peak) / float64(time.Millisecond))
	x := func(i int) float64 { return float64(left) + (float64(i)+0.5)/float64(seconds)*plotW }
	y := func(d time.Duration) float64 {
		return float64(top) + plotH - float64(d)/float64(time.Millisecond)/ceiling*plotH
	}
	var b strings.Builder
	svgStart(&b, width, height, 12, title)
	for i := 0; i <= 4; i++ {
		v := ceiling * float64(i) / 4
		gy := float64(top) + plotH - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e2e8f0"/><text x="%d" y="%.1f" text-anchor="end">%g ms</text>`+"\n",
			left, gy, width-right, gy, left-6, gy+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">second of the measured window (p99 of the requests started in it)</text>`+"\n", float64(left)+plotW/2, height-bottom+18)
	for i, r := range results {
		var pts []string
		for j, s := range r.Timeline {
			if s.Requests > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(j), y(s.P99)))
			}
		}
		color := chartColor(i)
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		lx, ly := 10+(i%2)*(width/2), height-bottom+38+(i/2)*legendRow
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d">%s (p99 %s)</text>`+"\n",
			lx, ly-4, color, lx+20, ly+1, html.EscapeString(r.Target), ms(r.Latency.P99))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// svgStart begins a standalone SVG document of the given size and font
// size, on white, with title at the top.
func svgStart(b *strings.Builder, width, height, fontSize int, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="%d">`+"\n", width, height, fontSize)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
}

// chartColor is the colour of the i-th system in a chart.
func chartColor(i int) string {
	colors := [...]string{"#2b6cb0", "#c05621", "#718096", "#2f855a", "#6b46c1", "#b7791f"}
	return colors[i%len(colors)]
}

// niceCeiling is the smallest of 1, 2 or 5 times a power of ten at or
// above v (> 0).
func niceCeiling(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
