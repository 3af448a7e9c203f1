package storekit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mdpio/mdp/md"
)

// DeadLetterRecord is one line of a dead-letter file: the record, where it
// was going and why it was not stored. Times are RFC 3339 UTC.
type DeadLetterRecord struct {
	At       string `json:"at"` // when it was dead-lettered
	Job      string `json:"job,omitempty"`
	Node     string `json:"node"`
	Error    string `json:"error"`
	Class    string `json:"class"` // transient (retries exhausted) or data (rejected)
	Attempts int    `json:"attempts"`
	Kind     string `json:"kind"` // bar, trade, quote or derived
	Provider string `json:"provider"`
	Symbol   string `json:"symbol"`
	// Bar fields.
	Start    string     `json:"start,omitempty"`
	End      string     `json:"end,omitempty"`
	Interval string     `json:"interval,omitempty"`
	Open     *jsonFloat `json:"open,omitempty"`
	High     *jsonFloat `json:"high,omitempty"`
	Low      *jsonFloat `json:"low,omitempty"`
	Close    *jsonFloat `json:"close,omitempty"`
	Volume   *jsonFloat `json:"volume,omitempty"`
	VWAP     *jsonFloat `json:"vwap,omitempty"`
	Trades   *int64     `json:"trades,omitempty"`
	BarType  string     `json:"bar_type,omitempty"`
	Source   string     `json:"source,omitempty"`
	// Derived fields: the schema's name and the field values by name.
	Schema string         `json:"schema,omitempty"`
	Fields map[string]any `json:"fields,omitempty"`
	// Trade and quote fields.
	TS      string     `json:"ts,omitempty"`
	Ingest  string     `json:"ingest,omitempty"`
	Price   *jsonFloat `json:"price,omitempty"`
	Size    *jsonFloat `json:"size,omitempty"`
	Side    string     `json:"side,omitempty"`
	TradeID *int64     `json:"trade_id,omitempty"`
	Bid     *jsonFloat `json:"bid,omitempty"`
	BidSize *jsonFloat `json:"bid_size,omitempty"`
	Ask     *jsonFloat `json:"ask,omitempty"`
	AskSize *jsonFloat `json:"ask_size,omitempty"`
	Seq     *uint64    `json:"seq,omitempty"`
}

// jsonFloat is a float64 that survives JSON when it is not finite (the very
// values a store tends to reject): NaN and ±Inf are written as strings.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = jsonFloat(math.NaN())
		return nil
	case `"+Inf"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = jsonFloat(v)
	return err
}

func fp(v float64) *jsonFloat { f := jsonFloat(v); return &f }

// deadLetter appends records to a JSON lines file, created on first use.
// Dead-lettering is rare, so it favours durability over speed: each call
// ends with an fsync.
type deadLetter struct {
	path string
	job  string
	node string
	mu   sync.Mutex
	f    *os.File
}

func (d *deadLetter) write(b *Batch, class ErrorClass, attempts int, cause error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if dir := filepath.Dir(d.path); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("dead-letter file %s: %w", d.path, err)
			}
		}
		f, err := os.OpenFile(d.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("dead-letter file: %w", err)
		}
		d.f = f
	}
	w := bufio.NewWriter(d.f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	base := DeadLetterRecord{
		At: time.Now().UTC().Format(time.RFC3339Nano), Job: d.job, Node: d.node,
		Error: cause.Error(), Class: class.String(), Attempts: attempts, Kind: b.Kind.String(),
	}
	for i := 0; i < b.Len(); i++ {
		r := base
		switch b.Kind {
		case md.KindBar:
			x := &b.Bars[i]
			in := b.Instrument(x.Sym)
			r.Provider, r.Symbol = in.Provider, in.Symbol
			r.Start, r.End, r.Interval = md.FormatTime(x.Start), md.FormatTime(x.End), md.FormatInterval(x.Interval)
			r.Open, r.High, r.Low, r.Close = fp(x.Open), fp(x.High), fp(x.Low), fp(x.Close)
			r.Volume, r.VWAP = fp(x.Volume), fp(x.VWAP)
			n := x.Trades
			r.Trades = &n
			r.BarType, r.Source = x.Type.String(), x.Source.String()
		case md.KindDerived:
			x := &b.Derived[i]
			in := b.Instrument(x.Sym)
			r.Provider, r.Symbol, r.TS = in.Provider, in.Symbol, md.FormatTime(x.TS)
			r.Schema, r.Fields = b.Schema.Name(), map[string]any{}
			for f, v := range b.Row(i) {
				fd := b.Schema.Field(f)
				if fd.Type == md.Int {
					r.Fields[fd.Name] = v.Int()
				} else {
					r.Fields[fd.Name] = fp(v.Float())
				}
			}
		case md.KindTrade:
			x := &b.Trades[i]
			in := b.Instrument(x.Sym)
			r.Provider, r.Symbol = in.Provider, in.Symbol
			r.TS, r.Ingest = md.FormatTime(x.TS), md.FormatTime(x.Ingest)
			r.Price, r.Size, r.Side = fp(x.Price), fp(x.Size), x.Side.String()
			id, seq := x.TradeID, x.Seq
			r.TradeID, r.Seq = &id, &seq
		case md.KindQuote:
			x := &b.Quotes[i]
			in := b.Instrument(x.Sym)
			r.Provider, r.Symbol = in.Provider, in.Symbol
			r.TS, r.Ingest = md.FormatTime(x.TS), md.FormatTime(x.Ingest)
			r.Bid, r.BidSize, r.Ask, r.AskSize = fp(x.Bid), fp(x.BidSize), fp(x.Ask), fp(x.AskSize)
			seq := x.Seq
			r.Seq = &seq
		}
		if err := enc.Encode(&r); err != nil {
			return fmt.Errorf("dead-letter file %s: %w", d.path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("dead-letter file %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("dead-letter file %s: %w", d.path, err)
	}
	return nil
}

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
