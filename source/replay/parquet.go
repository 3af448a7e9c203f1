package replay

import (
	"errors"
	"fmt"
	"github.com/mdpio/mdp/rowmap"
	"io"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// parquetInput reads the rows of a Parquet file and renders the mapped
// columns as text for the shared decoder, so Parquet, CSV and JSON lines go
// through one set of field rules. A TIMESTAMP column is read in its own unit.
type parquetInput struct {
	rd      parquet.Rows
	colSlot []int // leaf column index -> slot, or -1
	rows    []parquet.Row
	n, pos  int
	scratch [rowmap.NSlots][]byte
	// tsUnit is the unit (ns per unit) of ts and ingest_ts columns with a
	// TIMESTAMP logical type, 0 for plain columns; it overrides ts_format.
	tsUnit [rowmap.NSlots]int64
	row    parquet.Row

	size, total, read int64 // file bytes and rows, for progress
	counted           int64
	counter           *atomic.Int64
}

// openParquet opens the Parquet data in ra (size bytes); diskSize is the
// file's size on disk, which progress counts.
func openParquet(path string, ra io.ReaderAt, size, diskSize int64, lay *rowmap.Layout, counter *atomic.Int64) (*parquetInput, error) {
	f, err := parquet.OpenFile(ra, size)
	if err != nil {
		return nil, fmt.Errorf("open %s: parquet: %w", path, err)
	}
	schema := f.Schema()
	p := &parquetInput{colSlot: make([]int, len(schema.Columns())), size: diskSize, total: f.NumRows(), counter: counter}
	for i := range p.colSlot {
		p.colSlot[i] = -1
	}
	for s := range rowmap.NSlots {
		c, mapped := lay.Columns[s]
		if !mapped {
			continue
		}
		var leaf parquet.LeafColumn
		ok := false
		if c.Index >= 0 {
			if c.Index < len(p.colSlot) {
				leaf, ok = schema.Lookup(schema.Columns()[c.Index]...)
			}
		} else {
			leaf, ok = schema.Lookup(strings.Split(c.Name, ".")...)
		}
		if !ok {
			names := make([]string, 0, len(schema.Columns()))
			for _, path := range schema.Columns() {
				names = append(names, strings.Join(path, "."))
			}
			return nil, fmt.Errorf("%s: column %s (for %s) is not in the file; the columns are: %s", path, c, rowmap.SlotNames[s], strings.Join(names, ", "))
		}
		p.colSlot[leaf.ColumnIndex] = int(s)
		if lt := leaf.Node.Type().LogicalType(); lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok && ts.Unit.Value != nil {
				p.tsUnit[s] = int64(ts.Unit.Value.Duration())
			}
		}
	}
	p.rd = parquet.MultiRowGroup(f.RowGroups()...).Rows()
	p.rows = make([]parquet.Row, 256)
	return p, nil
}

// next fills vals with the next row; false at the end of the file.
func (p *parquetInput) next(vals *rowmap.Vals) (bool, error) {
	if p.pos == p.n {
		n, err := p.rd.ReadRows(p.rows)
		if n == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				p.counter.Add(p.size - p.counted)
				p.counted = p.size
				return false, nil
			}
			return false, err
		}
		p.n, p.pos = n, 0
		p.read += int64(n)
		if p.total > 0 {
			done := p.size * p.read / p.total
			p.counter.Add(done - p.counted)
			p.counted = done
		}
	}
	p.row = p.rows[p.pos]
	p.pos++
	for i := range vals {
		vals[i] = nil
	}
	for _, v := range p.row {
		c := v.Column()
		if c < 0 || c >= len(p.colSlot) || p.colSlot[c] < 0 {
			continue
		}
		s := rowmap.Slot(p.colSlot[c])
		if v.IsNull() {
			continue
		}
		buf := p.scratch[s][:0]
		switch v.Kind() {
		case parquet.Boolean:
			buf = strconv.AppendBool(buf, v.Boolean())
		case parquet.Int32:
			buf = strconv.AppendInt(buf, int64(v.Int32()), 10)
		case parquet.Int64:
			buf = strconv.AppendInt(buf, v.Int64(), 10)
		case parquet.Float:
			buf = formatNum(buf, float64(v.Float()), 32)
		case parquet.Double:
			buf = formatNum(buf, v.Double(), 64)
		case parquet.ByteArray, parquet.FixedLenByteArray:
			buf = append(buf, v.ByteArray()...)
		default:
			buf = append(buf, v.String()...)
		}
		p.scratch[s] = buf
		vals[s] = buf
	}
	return true, nil
}

// rowText renders the current row for malformed-row reports.
func (p *parquetInput) rowText() []byte {
	var b []byte
	for i, v := range p.row {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v.String()...)
	}
	return b
}

// seekRow moves to row n (the rows before it are not read).
func (p *parquetInput) seekRow(n int64) error {
	if err := p.rd.SeekToRow(n); err != nil {
		return err
	}
	p.n, p.pos, p.read = 0, 0, n
	return nil
}
