// Package rowmap maps the columns of foreign rows — CSV fields, JSON keys,
// Parquet columns — onto record fields and decodes them into trades,
// quotes and bars without allocating per row. provider.replay reads files
// through it (its columns param and presets), and every bus source reads
// json and csv messages through it (busfmt: mdp's own encoding, or a
// mapping param with the same rules as replay's columns), so a mapping
// means the same everywhere.
package rowmap
