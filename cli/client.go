package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/mdpio/mdp/jobs"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/scaleout"
	"github.com/mdpio/mdp/server"
)

// ServerEnv names the job server the client commands talk to.
const ServerEnv = "MDP_SERVER"

// DefaultServer is the job server address the client commands try when
// neither --server nor MDP_SERVER names one.
const DefaultServer = "http://127.0.0.1:8080"

// apiClient talks to a job server (or the read-only API of `mdp run`).
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

type clientFlags struct {
	server  string
	asJSON  bool
	timeout time.Duration
}

func (f *clientFlags) add(cmd *cobra.Command, withJSON bool) {
	cmd.Flags().StringVar(&f.server, "server", "", "job server URL (default $"+ServerEnv+", else "+DefaultServer+")")
	if withJSON {
		cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
	}
	cmd.Flags().DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the server's answer")
}

func (f *clientFlags) client() *apiClient {
	base := f.server
	if base == "" {
		base = os.Getenv(ServerEnv)
	}
	if base == "" {
		base = DefaultServer
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &apiClient{base: strings.TrimRight(base, "/"), token: os.Getenv(server.TokenEnv), http: &http.Client{Timeout: f.timeout}}
}

// apiError is an error answer of the server.
type apiError struct {
	code int
	body server.ErrorBody
}

func (e *apiError) Error() string {
	msg := e.body.Error
	if msg == "" {
		msg = http.StatusText(e.code)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", msg, e.code)
	for _, ce := range e.body.Errors {
		b.WriteString("\n")
		b.WriteString(ce.File)
		if ce.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", ce.Line, ce.Column)
		}
		b.WriteString(": ")
		if ce.Path != "" {
			b.WriteString(ce.Path + ": ")
		}
		b.WriteString(ce.Message)
	}
	return b.String()
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("job server %s: %w", c.base, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("job server %s: read answer: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		ae := &apiError{code: resp.StatusCode}
		_ = json.Unmarshal(data, &ae.body)
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("job server %s: decode answer: %w", c.base, err)
		}
	}
	return nil
}

// unreachable says, in one line, which address was tried and how to start
// a server.
func (c *apiClient) unreachable(err error) error {
	why := err.Error()
	var ue *url.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.As(err, &oe):
		why = oe.Err.Error()
	case errors.As(err, &ue):
		why = ue.Err.Error()
	}
	return fmt.Errorf("no mdp job server at %s (%s): start one with `mdp serve`, or set --server or %s", c.base, why, ServerEnv)
}

// clientExit maps a client error to the exit code: an invalid job file 2,
// anything else 1.
func clientExit(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.code == http.StatusBadRequest && len(ae.body.Errors) > 0 {
		return exit(ExitUsage, err)
	}
	return exit(ExitFailure, err)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) submitCommand() *cobra.Command {
	var f clientFlags
	var name string
	var noStart bool
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Register a job file with the job server and start it",
		Long: `Submit sends a job file to the job server (mdp serve), which validates it,
registers it and starts it. An invalid file is refused with every problem listed
(exit 2); a job of the same name is refused (exit 1).`,
		Example: `  mdp submit configs/dag/bars_to_sqlite.yaml
  mdp submit job.yaml --name nightly --no-start --server http://10.0.0.5:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return exit(ExitUsage, err)
			}
			q := url.Values{"filename": {filepath.Base(args[0])}}
			if name != "" {
				q.Set("name", name)
			}
			if noStart {
				q.Set("start", "false")
			}
			var st jobs.JobStatus
			if err := f.client().do(cmd.Context(), http.MethodPost, "/api/v1/jobs?"+q.Encode(), data, &st); err != nil {
				return clientExit(err)
			}
			if f.asJSON {
				return a.printJSON(st)
			}
			fmt.Fprintf(a.stdout, "submitted %s: %s\n", st.Name, st.State)
			if st.LastError != "" {
				fmt.Fprintf(a.stdout, "last error: %s\n", st.LastError)
			}
			return nil
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&name, "name", "", "the job's name (overrides the file's name key)")
	cmd.Flags().BoolVar(&noStart, "no-start", false, "only register the job")
	return cmd
}

func (a *app) listCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the jobs of a job server (or of an mdp run serving metrics)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []jobs.JobStatus
			if err := f.client().do(cmd.Context(), http.MethodGet, "/api/v1/jobs", nil, &list); err != nil {
				return clientExit(err)
			}
			if f.asJSON {
				return a.printJSON(list)
			}
			a.jobTable(list)
			return nil
		},
	}
	f.add(cmd, true)
	return cmd
}

func (a *app) jobTable(list []jobs.JobStatus) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODE\tSTATE\tUPTIME\tEVENTS/S\tEVENTS\tWM LAG\tERRORS\tRESTARTS")
	for _, st := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f\t%d\t%s\t%d\t%d\n", st.Name, st.Mode, st.State, seconds(st.UptimeSeconds),
			st.EventsPerSecond, st.EventsIn, lag(st.WatermarkLagSeconds), st.Errors, st.Restarts)
	}
	_ = tw.Flush()
}

func seconds(s float64) string {
	if s <= 0 {
		return "-"
	}
	return (time.Duration(s*float64(time.Second)) / time.Second * time.Second).String()
}

func lag(s float64) string {
	if s == 0 {
		return "-"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// nameArg takes the job's name from the argument or --job.
func nameArg(args []string, job string) (string, error) {
	switch {
	case len(args) == 1 && job != "" && args[0] != job:
		return "", fmt.Errorf("job named twice: %s and --job %s", args[0], job)
	case len(args) == 1:
		return args[0], nil
	case job != "":
		return job, nil
	}
	return "", errors.New("name the job: mdp status NAME (or --job NAME)")
}

func (a *app) statusCommand() *cobra.Command {
	var f clientFlags
	var job string
	var watch bool
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show a job's status: state, uptime, rates, per-node figures",
		Long: `Status asks the job server (or an mdp run or mdp worker serving metrics) for one
job's status: its state, uptime, events/s, watermark lag, errors and restarts,
then a line per node. For a scaled-out job (asked of its mdp run or one of its
mdp worker processes) it then lists the live workers with the partitions each
owns, and each partition's owner and lag. --watch follows the job's status
WebSocket and prints each update.`,
		Example: `  mdp status bars-to-sqlite
  mdp status --job bars-to-sqlite --json
  mdp status bars-to-sqlite --watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := nameArg(args, job)
			if err != nil {
				return err
			}
			c := f.client()
			if watch {
				return a.watch(cmd.Context(), c, name, f.asJSON)
			}
			var st jobs.JobStatus
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/jobs/"+url.PathEscape(name), nil, &st); err != nil {
				return clientExit(err)
			}
			if f.asJSON {
				return a.printJSON(st)
			}
			a.printStatus(st)
			return nil
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&job, "job", "", "the job's name (as the argument)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the status live (WebSocket) until interrupted or the job is deleted")
	return cmd
}

func (a *app) printStatus(st jobs.JobStatus) {
	a.jobTable([]jobs.JobStatus{st})
	if st.LastError != "" {
		fmt.Fprintf(a.stdout, "last error: %s\n", st.LastError)
	}
	if st.NextRestartAt != "" {
		fmt.Fprintf(a.stdout, "next restart at %s\n", st.NextRestartAt)
	}
	if st.Runtime == nil {
		return
	}
	if len(st.Runtime.Nodes) > 0 {
		fmt.Fprintln(a.stdout)
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tTYPE\tSTATE\tIN\tOUT\tWM LAG\tQUEUE\tDROPS\tERRORS")
		for _, n := range st.Runtime.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d/%d\t%d\t%d\n", n.ID, n.Type, n.State, n.EventsIn, n.EventsOut,
				lag(n.WatermarkLagSeconds), n.QueueDepth, n.QueueCapacity, total(n.Drops), total(n.Errors))
		}
		_ = tw.Flush()
	}
	if so := st.Runtime.Scaleout; so != nil {
		a.printScaleout(so)
	}
}

// printScaleout prints a scaled-out job's workers (with their restarts
// after transient failures), then each partition's owner and lag ("?" where the owner has not reported its progress yet).
func (a *app) printScaleout(so *scaleout.Status) {
	fmt.Fprintf(a.stdout, "\nstream %s, %d partitions, lag %d messages, %s\n", so.Stream, so.Partitions, so.LagMessages, lag(so.LagSeconds))
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tHOST\tPID\tPARTITIONS\tRETRIES\tLAG MSGS\tLAG")
	for _, w := range so.Workers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\n", w.ID, w.Host, w.PID, ranges(w.Partitions), w.Retries, w.LagMessages, lag(w.LagSeconds))
	}
	_ = tw.Flush()
	if len(so.Unowned) > 0 {
		fmt.Fprintf(a.stdout, "unowned partitions: %s\n", ranges(so.Unowned))
	}
	fmt.Fprintln(a.stdout)
	tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOWNER\tLAG MSGS\tLAG\tDUPS\tCKPT SEQ\tCKPT AGE")
	for _, p := range so.PartitionLag {
		owner, msgs, secs := p.Owner, strconv.FormatInt(p.LagMessages, 10), lag(p.LagSeconds)
		if owner == "" {
			owner = "-"
		}
		dups := strconv.FormatInt(p.Duplicates, 10)
		if !p.Reported {
			msgs, secs, dups = "?", "?", "?"
		}
		cseq, cage := "-", "-"
		if p.Checkpointed {
			cseq, cage = strconv.FormatUint(p.CheckpointSeq, 10), time.Duration(p.CheckpointAgeSeconds*float64(time.Second)).Round(time.Millisecond).String()
			if p.Done {
				cage += " (done)"
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Partition, owner, msgs, secs, dups, cseq, cage)
	}
	_ = tw.Flush()
}

// ranges writes sorted partition numbers as ranges: 0-3,8,10-11.
func ranges(ps []int) string {
	if len(ps) == 0 {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ps[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ps[j]))
		}
		i = j + 1
	}
	return b.String()
}

func total(m map[string]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// watch follows a job's status WebSocket.
func (a *app) watch(ctx context.Context, c *apiClient, name string, asJSON bool) error {
	u := strings.Replace(c.base, "http", "ws", 1) + "/api/v1/jobs/" + url.PathEscape(name) + "/ws"
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if c.token != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		if resp != nil {
			ae := &apiError{code: resp.StatusCode}
			if resp.Body != nil {
				data, _ := io.ReadAll(resp.Body)
				_ = json.Unmarshal(data, &ae.body)
			}
			return clientExit(ae)
		}
		return exit(ExitFailure, c.unreachable(err))
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return exit(ExitFailure, fmt.Errorf("status of %q: %w", name, err))
		}
		var m server.StatusMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return exit(ExitFailure, fmt.Errorf("status of %q: %w", name, err))
		}
		if asJSON {
			if _, err := a.stdout.Write(append(data, '\n')); err != nil {
				return err
			}
		} else if m.Job != nil {
			fmt.Fprintf(a.stdout, "--- %s\n", m.Time)
			a.printStatus(*m.Job)
		}
		if m.Type == "deleted" {
			fmt.Fprintf(a.stderr, "job %s was deleted\n", name)
			return nil
		}
	}
}

// actionCommand is stop, start and delete.
func (a *app) actionCommand(use, short, long, method, suffix string, force bool) *cobra.Command {
	var f clientFlags
	var job string
	var forced bool
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Long:  long,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := nameArg(args, job)
			if err != nil {
				return err
			}
			path := "/api/v1/jobs/" + url.PathEscape(name) + suffix
			if forced {
				path += "?force=true"
			}
			var st jobs.JobStatus
			var out any = &st
			if method == http.MethodDelete {
				out = nil
			}
			if err := f.client().do(cmd.Context(), method, path, nil, out); err != nil {
				return clientExit(err)
			}
			switch {
			case f.asJSON && method != http.MethodDelete:
				return a.printJSON(st)
			case method == http.MethodDelete:
				fmt.Fprintf(a.stdout, "deleted %s\n", name)
			default:
				fmt.Fprintf(a.stdout, "%s: %s\n", name, st.State)
				if st.LastError != "" {
					fmt.Fprintf(a.stdout, "last error: %s\n", st.LastError)
				}
			}
			return nil
		},
	}
	f.add(cmd, method != http.MethodDelete)
	cmd.Flags().StringVar(&job, "job", "", "the job's name (as the argument)")
	if force {
		cmd.Flags().BoolVar(&forced, "force", false, "abort a running job and delete it")
	}
	return cmd
}

func (a *app) logsCommand() *cobra.Command {
	var f clientFlags
	var job string
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a job's recent log records; -f follows them as they come",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := nameArg(args, job)
			if err != nil {
				return err
			}
			c := f.client()
			path := "/api/v1/jobs/" + url.PathEscape(name) + fmt.Sprintf("/logs?tail=%d", tail)
			emit := func(r jobs.LogRecord) error {
				if f.asJSON {
					return json.NewEncoder(a.stdout).Encode(r)
				}
				a.printLog(r)
				return nil
			}
			if follow {
				return a.followLogs(cmd.Context(), c, path+"&follow=true", emit)
			}
			var recs []jobs.LogRecord
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, &recs); err != nil {
				return clientExit(err)
			}
			for _, r := range recs {
				if err := emit(r); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&job, "job", "", "the job's name (as the argument)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records until interrupted")
	cmd.Flags().IntVar(&tail, "tail", 100, "print at most this many of the newest records (0: all kept)")
	return cmd
}

// followLogs reads the server's NDJSON log stream until it ends or ctx is
// cancelled, and says when records were lost from the job's ring before
// the stream carried them.
func (a *app) followLogs(ctx context.Context, c *apiClient, path string, print func(jobs.LogRecord) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("job server %s: %w", c.base, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// No overall timeout: the stream lasts until interrupted.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return clientExit(c.unreachable(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(resp.Body)
		ae := &apiError{code: resp.StatusCode}
		_ = json.Unmarshal(data, &ae.body)
		return clientExit(ae)
	}
	dec := json.NewDecoder(resp.Body)
	var last int64
	for {
		var r jobs.LogRecord
		if err := dec.Decode(&r); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return clientExit(fmt.Errorf("job server %s ended the log stream: the job was deleted or the server is stopping", c.base))
			}
			return clientExit(fmt.Errorf("job server %s: log stream: %w", c.base, err))
		}
		if last > 0 && r.Seq > last+1 {
			fmt.Fprintf(a.stderr, "… %d log records were overwritten in the job's ring before they could be sent\n", r.Seq-last-1)
		}
		last = r.Seq
		if err := print(r); err != nil {
			return err
		}
	}
}

func (a *app) printLog(r jobs.LogRecord) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s", r.Time, r.Level, r.Message)
	keys := make([]string, 0, len(r.Attrs))
	for k := range r.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, r.Attrs[k])
	}
	fmt.Fprintln(a.stdout, runtime.Redact(b.String()))
}

func (a *app) clientCommands() []*cobra.Command {
	return []*cobra.Command{
		a.submitCommand(), a.listCommand(), a.statusCommand(),
		a.actionCommand("stop", "Stop a job gracefully (it drains: the last bar reaches the sink)",
			"Stop asks the job server to stop the job gracefully and waits until it has drained:\nsources stop, queues drain, open bars flush, sinks close. The job stays registered.",
			http.MethodPost, "/stop", false),
		a.actionCommand("start", "Start a registered job that is not running", "Start asks the job server to start a registered job that is not running.",
			http.MethodPost, "/start", false),
		a.actionCommand("delete", "Delete a stopped job from the job server (--force: a running one)",
			"Delete removes a job from the job server's registry. A running job is refused\nunless --force, which aborts it first.",
			http.MethodDelete, "", true),
		a.logsCommand(),
	}
}
