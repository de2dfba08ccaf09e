package client

import (
	"fmt"
	"io"
	"strings"
)

// WriteCheck writes a check's answer as one line: the verdict and why.
func WriteCheck(w io.Writer, sub Subject, perm, res string, a CheckAnswer) error {
	verdict, may := "allowed", "may"
	if !a.Allowed {
		verdict, may = "denied", "may not"
	}
	_, err := fmt.Fprintf(w, "%s: %s %s %s on %s: %s\n", verdict, sub.Name(), may, perm, res, reason(a))
	return err
}

// reason is a decision's message, with its code when denied.
func reason(a CheckAnswer) string {
	msg, _ := a.Reason["message"].(string)
	if code, _ := a.Reason["code"].(string); !a.Allowed && code != "" {
		return msg + " (" + code + ")"
	}
	return msg
}

// WriteExplain writes an explained check: the verdict, what decided it,
// and for an allow by assignment the path from the role's resource down
// to the one checked, as an indented tree; for a denial, its cause.
func WriteExplain(w io.Writer, sub Subject, perm, res string, a CheckAnswer) error {
	var b strings.Builder
	verdict := "ALLOWED"
	if !a.Allowed {
		verdict = "DENIED"
	}
	fmt.Fprintf(&b, "%s  %s  %s  %s  (decided by %s, revision %d)\n", verdict, sub.Name(), perm, res, a.DecidedBy, a.Revision)
	switch {
	case !a.Allowed:
		code, _ := a.Reason["code"].(string)
		fmt.Fprintf(&b, "  cause: %s\n  %s\n", code, a.Reason["message"])
	case a.DecidedBy == "assignment":
		role, _ := a.Reason["role"].(string)
		holder := "to " + sub.Name()
		if g, ok := a.Reason["group"].(map[string]any); ok {
			holder = fmt.Sprintf("to group %v (%v), which %s is a member of", g["name"], g["id"], sub.Name())
		}
		fmt.Fprintf(&b, "  role %s, assigned %s\n", role, holder)
		path, _ := a.Reason["path"].([]any)
		labels := make([]string, len(path))
		width := 0
		for i, step := range path {
			r, _ := step.(map[string]any)
			labels[i] = "  " + strings.Repeat("   ", max(i-1, 0))
			if i > 0 {
				labels[i] += "└─ "
			}
			labels[i] += fmt.Sprintf("%v:%v", r["type"], r["external_id"])
			width = max(width, len([]rune(labels[i])))
		}
		for i, step := range path {
			r, _ := step.(map[string]any)
			note := ""
			switch {
			case i == 0 && i == len(path)-1:
				note = "← role " + role + " here grants " + perm
			case i == 0:
				note = "← role " + role + " here"
			case i == len(path)-1:
				note = "← " + perm + " inherited here"
			}
			pad := strings.Repeat(" ", width-len([]rune(labels[i])))
			b.WriteString(strings.TrimRight(fmt.Sprintf("%s%s  %v  %s", labels[i], pad, r["id"], note), " ") + "\n")
		}
	default:
		fmt.Fprintf(&b, "  %s\n", a.Reason["message"])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
