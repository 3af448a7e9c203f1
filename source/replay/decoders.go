package replay

import (
	"sync"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/rowmap"
)

// Parallel decoding (decoders > 1). Each file gets a decoder goroutine
// that runs the serial fill loop (split, decode, jump guard, time filter)
// on its own fileReader, symbol table and malformed queue, and hands the
// merge whole chunks. The merge stays on the source goroutine and takes a
// file's next chunk exactly where a serial replay would have decoded it;
// what decoding did besides records happens there too, in the same order:
// the chunk's new instruments are interned into the job's table (so ids
// are the serial ones), size decimals noted, malformed rows reported. The
// output, its symbol ids, malformed reports and checkpoint positions are
// therefore those of the serial replay. A semaphore bounds how many
// decoders run at once.

// chunkSets is how many chunk buffers circulate per file: one the merge
// reads, one being decoded, one decoded ahead.
const chunkSets = 3

// decodedChunk is a chunk a decoder produced, with what the merge does on
// taking it.
type decodedChunk struct {
	trades []md.Trade
	quotes []md.Quote
	meta   []recMeta
	nsyms  int // instruments in the decoder's table once the chunk was decoded
	sizes  []rowmap.SizeNote
	rows   []queuedRow // malformed rows found decoding it
	eof    bool
	err    error
}

// asyncFile is one file decoded on its own goroutine.
type asyncFile struct {
	d     *fileReader     // decodes; used by the decoder goroutine only
	table *md.SymbolTable // the decoder's own instruments
	out   chan decodedChunk
	free  chan decodedChunk

	// Merge side.
	global *md.SymbolTable
	sizes  *md.SizeDecimals // the job table's, shared by the files
	remap  []md.SymID       // decoder's id -> the job's
}

// newAsyncFile wraps d, opened with its own table, for a decoder
// goroutine, and returns the merge's view of it.
func newAsyncFile(d *fileReader, table, global *md.SymbolTable, sizes *md.SizeDecimals) *fileReader {
	jobMal := d.mal
	d.dec.LogSizeDecimals()
	d.mal = &malformed{policy: jobMal.policy, queue: true}
	a := &asyncFile{d: d, table: table, out: make(chan decodedChunk, chunkSets-1),
		free: make(chan decodedChunk, chunkSets), global: global, sizes: sizes}
	for range chunkSets - 1 {
		c := decodedChunk{meta: make([]recMeta, 0, chunkSize+chunkSlack)}
		if d.kind == md.KindTrade {
			c.trades = make([]md.Trade, 0, chunkSize+chunkSlack)
		} else {
			c.quotes = make([]md.Quote, 0, chunkSize+chunkSlack)
		}
		a.free <- c
	}
	return &fileReader{idx: d.idx, path: d.path, format: d.format, kind: d.kind, mal: jobMal, async: a, prev: d.prev}
}

// run decodes the file chunk by chunk until its end, an error, or done.
func (a *asyncFile) run(sem chan struct{}, done <-chan struct{}) {
	d := a.d
	for {
		select {
		case sem <- struct{}{}:
		case <-done:
			return
		}
		err := d.fill()
		<-sem
		sizes := d.dec.TakeSizeNotes(nil)
		if d.pieces != nil {
			sizes = d.pieces.takeNotes(sizes)
		}
		c := decodedChunk{trades: d.trades, quotes: d.quotes, meta: d.meta, nsyms: a.table.Len(),
			sizes: sizes, rows: d.mal.queued, eof: d.eof, err: err}
		d.mal.queued = nil
		select {
		case a.out <- c:
		case <-done:
			return
		}
		if err != nil || d.eof {
			return
		}
		select {
		case b := <-a.free:
			d.trades, d.quotes, d.meta = b.trades, b.quotes, b.meta
		case <-done:
			return
		}
	}
}

// fillAsync takes the file's next decoded chunk (fill's work for a file
// decoded on its own goroutine).
func (r *fileReader) fillAsync() error {
	a := r.async
	r.head = 0
	if r.eof {
		r.trades, r.quotes, r.meta = r.trades[:0], r.quotes[:0], r.meta[:0]
		return nil
	}
	c := <-a.out
	if cap(r.meta) > 0 || cap(r.trades) > 0 || cap(r.quotes) > 0 {
		select {
		case a.free <- decodedChunk{trades: r.trades[:0], quotes: r.quotes[:0], meta: r.meta[:0]}:
		default:
		}
	}
	r.trades, r.quotes, r.meta, r.eof = c.trades, c.quotes, c.meta, c.eof
	for id := len(a.remap); id < c.nsyms; id++ {
		in := a.table.Get(md.SymID(id))
		a.remap = append(a.remap, a.global.Intern(in.Provider, in.Symbol))
	}
	remap := a.remap
	for i := range r.trades {
		r.trades[i].Sym = remap[r.trades[i].Sym]
	}
	for i := range r.quotes {
		r.quotes[i].Sym = remap[r.quotes[i].Sym]
	}
	for _, n := range c.sizes {
		a.sizes.Note(remap[n.Sym], n.Decimals)
	}
	if err := r.mal.replay(c.rows, 0); err != nil {
		return err
	}
	return c.err
}

// decoderPool runs the decoder goroutines of a replay.
type decoderPool struct {
	done chan struct{}
	wg   sync.WaitGroup
	sem  chan struct{}
	fs   []*asyncFile
}

func newDecoderPool(n int) *decoderPool {
	return &decoderPool{done: make(chan struct{}), sem: make(chan struct{}, n)}
}

// start runs r's decoder (r from newAsyncFile).
func (p *decoderPool) start(r *fileReader) {
	p.fs = append(p.fs, r.async)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		r.async.run(p.sem, p.done)
	}()
}

// stop ends the decoders, waits for them and closes their files.
func (p *decoderPool) stop() {
	close(p.done)
	p.wg.Wait()
	for _, a := range p.fs {
		a.d.close()
	}
}
