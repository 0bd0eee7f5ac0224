// dma_load: the LOAD DMA unit (ISA §4 "LOAD and STORE", LOAD queue: `load`
// and `sync`), cycle-exact with sim::machine (start_dma, arbitrate) and
// sim::dma (for_each_chunk, chunk_dram, BurstPlan, load_finish, load_copy).
//
// Two stages, as in the model:
// - Request stage: holds one `load` from its start s until its last burst is
//   granted. Bursts follow BurstPlan::of / dram::split_bursts: one DRAM range
//   if stride == cols*e (e = 1 spad, 4 acc), else one range per DRAM row; a
//   range is cut at 256 beats and at 4 KiB boundaries. Burst b is requested
//   (req_valid) from cycle max(s+1, previous grant+1), held until req_grant.
//   A `load` at the head may start from the cycle after the last grant; a
//   `sync` only when, in addition, every started load has finished (idle),
//   and takes one cycle (fin_valid and push_next in its start cycle s:
//   finish and push at s+1).
// - Buffer side, in program order: chunk q (one local-row write: padded row
//   y, one column block; ISA §3 `load` placement) is written in cycle
//   w_q = max(w_{q-1}+1, a_q+1), w_{-1} = max(s, previous load's last write),
//   a_q = arrival of the beat holding the chunk's last DRAM byte (padding-only
//   chunks need none). The chunks of a block consume its useful DRAM bytes
//   in order (padding consumes none), and the beats of successive loads
//   arrive in program order, so a byte-stream FIFO between beats and chunk
//   writes is exact: each beat pushes its useful bytes (a range's first beat
//   may start before lo, its last may end after hi; a FIFO of granted
//   bursts' descriptors says which lanes), visible from the cycle after the
//   beat (a+1); a chunk is written in the first cycle the stage holds all of
//   its bytes, no earlier than the cycle after the previous chunk write and
//   the cycle after its load started (the load's walk parameters enter a
//   FIFO at s, visible from s+1). The load finishes at f = w_last+1:
//   fin_valid and push_next are asserted in cycle w_last.
//
// Indexed loads (gathers, ISA §3/§4 "Indexed load"): the request stage
// first requests the ids (one range [idx_addr, idx_addr + rows * 8 or 4));
// their beats bypass the stage into the id assembler, which checks each id
// against 0..limit as it completes and banks it. In cycle v (the cycle
// after the ids' last beat) the load either faults (idx_fault: the first
// bad position, the ERROR_INFO the top latches) or its rows are requested,
// each row its own range at dram + id * stride, from v on. Chunk writes
// then follow the stage exactly as for a plain load.
//
// Compressed loads (zfmt = mask, ISA §3/§4 "Compressed load"): the stream
// is one range [dram, dram + stride) whose useful bytes enter the stage like
// a plain load's. The chunk walk then reads records instead of rows: at a
// data chunk of DRAM row y the stage's read pointer is at record y (its
// mask of mb = ceil(cols/8) bytes, then its stored bytes); the record's
// extent L = mb + (bits set in the mask bytes), cut at the stream's end, is
// ready when the stage has held it for a cycle (wptr_d: the write pointer
// one cycle ago), which is the expander's STREAM_EXPAND_CYCLES: a data chunk
// is written at max(w_{q-1}+1, a_y+2). The row is expanded combinationally
// from the stage's window (the mask's prefix sums route stored byte p to
// its column), and the record is popped at its row's last data chunk. A
// bad record (a mask bit at or past cols, an extent past the stream, bytes
// after the last record) raises the unit's fault (idx_fault with
// fault_stream: BadStream, ERROR_INFO its row or rows) in the cycle it is
// examined, instead of the write. Rows of more than COLS elements raise
// stage_overflow at the load's start (the expander holds one row of COLS).
//
// The stage is B byte banks (B = 2^k >= 4*COLS and >= W), stream byte p in
// bank p mod B: a beat's <= W bytes and a chunk's <= 4*COLS bytes each touch
// a bank at most once, so every bank is a 1-write 1-read memory and a beat
// (a chunk) is one rotation away from the banks. The stage holds
// CAP = B * DEPTH >= STAGE_BYTES bytes; the model has no such limit, so if
// a legal program would need more (loads of much padding behind fast data,
// or more than JOBS unfinished loads, or more than BURSTS granted bursts
// awaiting data) the sticky `stage_overflow` is raised instead of stalling
// (stalling would break cycle-exactness; the harness reports it).
//
// Counters per cycle: c_busy = some started load/sync not finished (union of
// [s, f)); c_stall = the head is available and could start but for tok_ok;
// c_spad_wr / c_acc_wr = a chunk write. idle: every started instruction has
// finished.
//
// Constructs: only what both Verilator 5.006 (lint-clean under -Wall) and
// yosys 0.23 accept (docs/DESIGN.md §6).

`include "systole_isa.vh"

module dma_load #(
    parameter int COLS = 4,
    parameter int W = 4,
    parameter int SPAD_ROWS = 4096,
    parameter int ACC_ROWS = 256,
    parameter int STAGE_BYTES = 4096,
    // Loads started and not finished (a power of two, >= 2).
    parameter int JOBS = 16,
    // LOAD bursts granted whose beats have not all arrived (a power of two,
    // >= dram.max_outstanding, at most 64).
    parameter int BURSTS = 64,
    // Ids of one indexed load the unit holds (a power of two >= W / 4): a
    // gather of more rows raises stage_overflow at its start.
    parameter int IDS = 1024
) (
    input  logic                 clk,
    input  logic                 rst,
    input  logic                 head_valid,
    input  logic [        255:0] head_instr,
    input  logic [         31:0] head_pc,
    input  logic                 tok_ok,
    output logic                 start,
    output logic                 push_next,     // LOAD pushes only toward COMPUTE
    output logic                 req_valid,
    output logic [         31:0] req_addr,      // beat0 * W
    output logic [          8:0] req_beats,
    input  logic                 req_grant,
    input  logic                 rd_valid,      // a LOAD read beat this cycle
    input  logic [      W*8-1:0] rd_data,       // byte i = DRAM byte beat*W + i
    output logic                 sp_we,
    output logic [         15:0] sp_row,
    output logic [     COLS*8-1:0] sp_data,
    output logic [       COLS-1:0] sp_be,
    output logic                 ac_we,
    output logic [         15:0] ac_row,
    output logic [    COLS*32-1:0] ac_data,
    output logic [       COLS-1:0] ac_be,
    output logic                 fin_valid,
    output logic [         31:0] fin_pc,
    output logic                 idle,
    output logic                 c_busy,
    output logic                 c_stall,
    output logic                 c_spad_wr,
    output logic                 c_acc_wr,
    output logic                 stage_overflow,
    // An indexed load's id outside 0..limit: the fault in cycle v (the cycle
    // after its ids' last beat), the load's instruction and the id's position.
    // A compressed load's bad record raises it too, with fault_stream (the
    // load's instruction; the bad row, or rows for bytes left over).
    output logic                 idx_fault,
    output logic                 fault_stream,
    output logic [         31:0] idx_fault_pc,
    output logic [         31:0] idx_fault_pos
);
  // ---------------------------------------------------------------- sizes
  localparam int LW = $clog2(W);               // W = 2^LW
  localparam int OW = LW + 1;                  // a lane count 0..W
  localparam int CB = 4 * COLS;                // bytes of the widest chunk (acc)
  localparam int BMAX = (W > CB) ? W : CB;
  localparam int LB = $clog2(BMAX);
  localparam int B = 1 << LB;                  // stage banks
  localparam int DREQ = (STAGE_BYTES + B - 1) / B;
  localparam int LD = (DREQ > 2) ? $clog2(DREQ) : 1;
  localparam int DEPTH = 1 << LD;              // bytes per bank
  localparam int CAP = B * DEPTH;              // stage capacity (>= STAGE_BYTES)
  localparam int PW = LB + LD + 1;             // stage pointers (one wrap bit)
  localparam int LJ = $clog2(JOBS);
  localparam int LBU = $clog2(BURSTS);
  localparam int LCW = $clog2(COLS);           // a local column 0..COLS-1
  localparam int LBPB = $clog2(`SYS_BURST_BOUNDARY) - LW;  // beats per 4 KiB = 2^LBPB
  localparam logic [47:0] WMASK = 48'(W) - 48'd1;   // byte lane of an address
  localparam logic [7:0] OP_SYNC = `SYS_OP_SYNC;
  localparam logic [`SYS_LOAD_BUF_W-1:0] BUF_ACC = `SYS_BUF_ACC;
  localparam logic [`SYS_LOAD_ZFMT_W-1:0] ZFMT_MASK = `SYS_ZFMT_MASK;
  localparam int MBX = (COLS + 7) / 8;         // mask bytes of a compressed row, at most

  // ------------------------------------------------- the head (cycle s)
  wire        h_sync = head_instr[`SYS_OPCODE_LO+:`SYS_OPCODE_W] == OP_SYNC;
  wire        h_push = head_instr[`SYS_DEP_PUSH_NEXT];
  wire        h_acc = head_instr[`SYS_LOAD_BUF_LO+:`SYS_LOAD_BUF_W] == BUF_ACC;
  wire [31:0] h_dram = head_instr[`SYS_LOAD_DRAM_LO+:`SYS_LOAD_DRAM_W];
  wire [31:0] h_stride = head_instr[`SYS_LOAD_STRIDE_LO+:`SYS_LOAD_STRIDE_W];
  wire [15:0] h_rows = head_instr[`SYS_LOAD_ROWS_LO+:`SYS_LOAD_ROWS_W];
  wire [15:0] h_cols = head_instr[`SYS_LOAD_COLS_LO+:`SYS_LOAD_COLS_W];
  wire [ 7:0] h_ptop = head_instr[`SYS_LOAD_PAD_TOP_LO+:`SYS_LOAD_PAD_TOP_W];
  wire [ 7:0] h_pbot = head_instr[`SYS_LOAD_PAD_BOTTOM_LO+:`SYS_LOAD_PAD_BOTTOM_W];
  wire [ 7:0] h_pleft = head_instr[`SYS_LOAD_PAD_LEFT_LO+:`SYS_LOAD_PAD_LEFT_W];
  wire [ 7:0] h_pright = head_instr[`SYS_LOAD_PAD_RIGHT_LO+:`SYS_LOAD_PAD_RIGHT_W];
  wire [ 7:0] h_padv = head_instr[`SYS_LOAD_PAD_VALUE_LO+:`SYS_LOAD_PAD_VALUE_W];
  wire [15:0] h_addr = head_instr[`SYS_LOAD_ADDR_LO+:`SYS_LOAD_ADDR_W];
  wire [15:0] h_col = head_instr[`SYS_LOAD_COL_LO+:`SYS_LOAD_COL_W];
  // Indexed (a gather): ids of 8 (i64) or 4 (i32) bytes at idx_addr, each in 0..limit.
  wire [ 1:0] h_idx = head_instr[`SYS_LOAD_IDX_LO+:`SYS_LOAD_IDX_W];
  wire        h_gather = h_idx != 2'(`SYS_IDX_NONE);
  wire        h_i64 = h_idx == 2'(`SYS_IDX_I64);
  wire [31:0] h_idx_addr = head_instr[`SYS_LOAD_IDX_ADDR_LO+:`SYS_LOAD_IDX_ADDR_W];
  wire [31:0] h_limit = head_instr[`SYS_LOAD_LIMIT_LO+:`SYS_LOAD_LIMIT_W];
  wire [19:0] h_id_len = h_i64 ? {1'b0, h_rows, 3'b000} : {2'b00, h_rows, 2'b00};
  // A compressed stream: `stride` bytes, one range (spad only, not indexed).
  wire        h_zm = head_instr[`SYS_LOAD_ZFMT_LO+:`SYS_LOAD_ZFMT_W] == ZFMT_MASK;

  // DRAM side: bytes per DRAM row, one range or one per row.
  wire [17:0] h_rowbytes = h_acc ? {h_cols, 2'b00} : {2'b00, h_cols};
  wire        h_contig = h_zm || h_stride == 32'(h_rowbytes);
  wire [47:0] h_len = h_zm ? 48'(h_stride) : h_contig ? 48'(34'(h_rows) * 34'(h_rowbytes)) : 48'(h_rowbytes);
  // Buffer side: padded block Y x X, column block of its first element.
  wire [16:0] h_ny = 17'(h_ptop) + 17'(h_rows) + 17'(h_pbot);
  wire [16:0] h_nx = 17'(h_pleft) + 17'(h_cols) + 17'(h_pright);
  wire [15:0] h_cb0 = h_col / 16'(COLS);
  wire [LCW-1:0] h_lc0 = LCW'(h_col % 16'(COLS));
  // First local row: addr + (col / COLS) * Y (rows are 16 bits: mod 2^16).
  wire [15:0] h_row0 = h_addr + h_cb0 * h_ny[15:0];

  // Request stage free; unit idle (no started load unfinished).
  logic rq_busy;
  logic [LJ:0] j_wp, j_rp;
  wire have_job = j_wp != j_rp;
  wire can_start = h_sync ? !have_job : !rq_busy;
  assign start = head_valid && tok_ok && can_start;
  wire start_load = start && !h_sync;
  wire start_sync = start && h_sync;

  // -------------------------------------------------------- request stage
  logic [47:0] rq_lo;            // first byte of the current range
  logic [31:0] rq_stride;
  logic [17:0] rq_rowbytes;
  logic [15:0] rq_left;          // ranges after the current one
  logic [47:0] rq_beat;          // first beat of the next burst
  logic [47:0] rq_last;          // last beat of the current range
  logic [OW-1:0] rq_endl;        // lanes of the range's last beat in the range
  logic        rq_first;         // the next burst starts the range

  // An indexed load (a gather): first its ids, one range (rq_ids); then
  // each gathered row its own range, row rq_y's read from the id banks
  // when it begins (rq_need), from the cycle its ids are known (ids_ok).
  logic        rq_gather, rq_ids, rq_need;
  logic [15:0] rq_y, rq_rows;
  logic [31:0] rq_dram;
  logic        ids_ok;
  logic [31:0] g_id;             // id of row rq_y (the id banks, below)

  // A range's beats: the head's first range (at start: its ids if it
  // gathers) or the next DRAM row.
  wire [47:0] nr_lo = rq_busy ? rq_lo + 48'(rq_stride) : h_gather ? 48'(h_idx_addr) : 48'(h_dram);
  wire [47:0] nr_len = rq_busy ? 48'(rq_rowbytes) : h_gather ? 48'(h_id_len) : h_len;
  wire [47:0] nr_hi1 = nr_lo + nr_len - 48'd1;
  wire [47:0] nr_beat = nr_lo >> LW;
  wire [47:0] nr_last = nr_hi1 >> LW;
  wire [OW-1:0] nr_endl = OW'(nr_hi1 & WMASK) + OW'(1);

  // A gathered row's range, from its id (only while one begins: the
  // multiply is skipped otherwise). The window check keeps it in 32 bits.
  logic [47:0] g_lo, g_hi1;
  always_comb begin
    if (rq_need) begin
      g_lo = 48'(rq_dram) + 48'(64'(g_id) * 64'(rq_stride));
      g_hi1 = g_lo + 48'(rq_rowbytes) - 48'd1;
    end else begin
      g_lo = '0;
      g_hi1 = '0;
    end
  end
  wire [47:0] cur_lo = rq_need ? g_lo : rq_lo;
  wire [47:0] cur_beat = rq_need ? g_lo >> LW : rq_beat;
  wire [47:0] cur_last = rq_need ? g_hi1 >> LW : rq_last;
  wire [OW-1:0] cur_endl = rq_need ? OW'(g_hi1 & WMASK) + OW'(1) : rq_endl;
  wire        cur_first = rq_need || rq_first;

  // The next burst: up to the range's end, 256 beats, the 4 KiB boundary.
  wire [47:0] e_range = cur_last + 48'd1;
  wire [47:0] e_max = cur_beat + 48'(`SYS_BURST_MAX_BEATS);
  wire [47:0] e_page = ((cur_beat >> LBPB) + 48'd1) << LBPB;
  wire [47:0] e_1 = (e_range < e_max) ? e_range : e_max;
  wire [47:0] bend = (e_1 < e_page) ? e_1 : e_page;
  wire        rng_done = bend == e_range;

  assign req_valid = rq_busy && !(rq_need && !ids_ok);
  assign req_addr = 32'(cur_beat << LW);
  assign req_beats = 9'(bend - cur_beat);

  always_ff @(posedge clk) begin
    if (rst) begin
      rq_busy <= 1'b0;
      rq_need <= 1'b0;
    end else if (start_load) begin
      rq_busy <= 1'b1;
      rq_lo <= nr_lo;
      rq_stride <= h_stride;
      rq_rowbytes <= h_rowbytes;
      rq_left <= h_contig ? 16'd0 : h_rows - 16'd1;
      rq_beat <= nr_beat;
      rq_last <= nr_last;
      rq_endl <= nr_endl;
      rq_first <= 1'b1;
      rq_gather <= h_gather;
      rq_ids <= h_gather;
      rq_need <= 1'b0;
      rq_rows <= h_rows;
      rq_dram <= h_dram;
    end else if (req_grant && req_valid) begin
      if (rq_gather && !rq_ids) begin
        // A gathered row: its next burst, or the next row, or done.
        if (!rng_done) begin
          rq_lo <= cur_lo;
          rq_beat <= bend;
          rq_last <= cur_last;
          rq_endl <= cur_endl;
          rq_first <= 1'b0;
          rq_need <= 1'b0;
        end else if (rq_y == rq_rows - 16'd1) begin
          rq_busy <= 1'b0;
          rq_need <= 1'b0;
        end else begin
          rq_y <= rq_y + 16'd1;
          rq_need <= 1'b1;
        end
      end else if (!rng_done) begin
        rq_beat <= bend;
        rq_first <= 1'b0;
      end else if (rq_gather) begin
        // The ids are all requested: row 0 waits for them.
        rq_ids <= 1'b0;
        rq_need <= 1'b1;
        rq_y <= 16'd0;
      end else if (rq_left == 16'd0) begin
        rq_busy <= 1'b0;
      end else begin
        rq_left <= rq_left - 16'd1;
        rq_lo <= nr_lo;
        rq_beat <= nr_beat;
        rq_last <= nr_last;
        rq_endl <= nr_endl;
        rq_first <= 1'b1;
      end
    end
  end

  // ---------------------------------- granted bursts awaiting their beats
  logic [8:0] bf_beats[0:BURSTS-1];
  logic [OW-1:0] bf_off[0:BURSTS-1];   // first useful lane of the first beat
  logic [OW-1:0] bf_end[0:BURSTS-1];   // one past the last useful lane of the last beat
  logic          bf_id[0:BURSTS-1];    // a burst of an indexed load's ids
  logic [LBU:0] bf_wp, bf_rp;
  logic [8:0] bcnt;                    // beats of the head burst received
  wire bf_push = req_grant && req_valid;
  always_ff @(posedge clk) begin
    if (bf_push) begin
      bf_beats[bf_wp[LBU-1:0]] <= req_beats;
      bf_off[bf_wp[LBU-1:0]] <= cur_first ? OW'(cur_lo & WMASK) : OW'(0);
      bf_end[bf_wp[LBU-1:0]] <= rng_done ? cur_endl : OW'(W);
      bf_id[bf_wp[LBU-1:0]] <= rq_gather && rq_ids;
    end
  end

  wire [LBU-1:0] bh = bf_rp[LBU-1:0];
  wire b_first = bcnt == 9'd0;
  wire b_last = bcnt == bf_beats[bh] - 9'd1;
  wire [OW-1:0] b_off = b_first ? bf_off[bh] : OW'(0);
  wire [OW-1:0] b_end = b_last ? bf_end[bh] : OW'(W);
  // An id beat feeds the id assembler (below), not the stage.
  wire id_beat = rd_valid && bf_id[bh];
  wire [OW-1:0] nb = (rd_valid && !bf_id[bh]) ? b_end - b_off : OW'(0);   // bytes pushed this cycle
  wire bf_pop = rd_valid && b_last;
  wire [LBU:0] bf_held = bf_wp - bf_rp;
  wire [LBU+1:0] bf_next = {1'b0, bf_held} + (LBU + 2)'(bf_push) - (LBU + 2)'(bf_pop);

  always_ff @(posedge clk) begin
    if (rst) begin
      bf_wp <= '0;
      bf_rp <= '0;
      bcnt <= 9'd0;
    end else begin
      if (bf_push) bf_wp <= bf_wp + (LBU + 1)'(1);
      if (rd_valid) begin
        if (b_last) begin
          bf_rp <= bf_rp + (LBU + 1)'(1);
          bcnt <= 9'd0;
        end else begin
          bcnt <= bcnt + 9'd1;
        end
      end
    end
  end

  // ------------------------------------------------------- the id assembler
  // An indexed load's ids arrive as a byte stream (id_p bytes so far; id_w
  // its last 7). A beat completes at most KM ids: each is checked against
  // 0..limit as it completes (the first bad position kept) and its low 32
  // bits written to bank (j mod KM) of the id banks, row j / KM. In the
  // cycle after the last id byte (v) either the rows may be requested
  // (ids_ok) or the load faults (idx_due). Only one load's ids are ever in
  // flight: a load starts after the previous one's last grant, which for
  // a gather comes after its ids.
  localparam int KM = (W >= 8) ? W / 4 : 1;     // ids completed by one beat, at most
  localparam int IDB = IDS / KM;                // rows of an id bank
  localparam int LIDB = $clog2(IDB);
  localparam int CATB = 2 * W + 8;              // bytes of the assembly window
  logic [19:0] id_p, id_total;
  logic [55:0] id_w;
  logic        id_i64, id_bad, idx_due;
  logic [31:0] id_limit, g_pc;
  logic [15:0] id_bad_pos;
  logic [CATB*8-1:0] id_cat, id_sh;
  logic [KM-1:0] id_done, id_err;
  logic [KM*32-1:0] id_val;
  logic [OW-1:0] id_nu;
  logic [2:0] id_r;
  logic [19:0] id_j0;
  logic [15:0] id_first;
  logic id_any;
  always_comb begin
    {id_cat, id_sh, id_done, id_err, id_val, id_nu, id_r, id_j0, id_first, id_any} = '0;
    if (id_beat) begin
      id_nu = b_end - b_off;
      id_r = id_i64 ? id_p[2:0] : {1'b0, id_p[1:0]};
      id_j0 = id_i64 ? id_p >> 3 : id_p >> 2;
      // Window byte i is stream byte id_p - 7 + i: id_w, then the beat's
      // useful bytes; shifted so that id j0 + k starts at byte k * size.
      id_cat[56+:W*8] = rd_data >> {b_off, 3'b000};
      id_cat[55:0] = id_w;
      id_sh = id_cat >> {3'd7 - id_r, 3'b000};
      for (int k = 0; k < KM; k++) begin
        if (id_i64) begin
          id_done[k] = 32'(8 * (k + 1)) <= 32'(id_r) + 32'(id_nu);
          id_err[k] = (id_sh[64*k+32+:32] != 32'd0) || (id_sh[64*k+:32] >= id_limit);
          id_val[32*k+:32] = id_sh[64*k+:32];
        end else begin
          id_done[k] = 32'(4 * (k + 1)) <= 32'(id_r) + 32'(id_nu);
          id_err[k] = id_sh[32*k+31] || (id_sh[32*k+:32] >= id_limit);
          id_val[32*k+:32] = id_sh[32*k+:32];
        end
      end
      for (int k = KM - 1; k >= 0; k--) begin
        if (id_done[k] && id_err[k]) begin
          id_any = 1'b1;
          id_first = 16'(id_j0) + 16'(k);
        end
      end
    end
  end
  wire [CATB*8-1:0] id_next = id_cat >> {id_nu, 3'b000};
  wire id_last = id_beat && (id_p + 20'(id_nu) == id_total);

  always_ff @(posedge clk) begin
    if (rst) begin
      ids_ok <= 1'b0;
      idx_due <= 1'b0;
    end else if (start_load && h_gather) begin
      id_p <= 20'd0;
      id_total <= h_id_len;
      id_i64 <= h_i64;
      id_limit <= h_limit;
      id_bad <= 1'b0;
      ids_ok <= 1'b0;
      g_pc <= head_pc;
    end else if (id_beat) begin
      id_p <= id_p + 20'(id_nu);
      id_w <= id_next[55:0];
      if (!id_bad && id_any) begin
        id_bad <= 1'b1;
        id_bad_pos <= id_first;
      end
      if (id_last) begin
        if (id_bad || id_any) idx_due <= 1'b1;
        else ids_ok <= 1'b1;
      end
    end
  end
  // (Both in one cycle: the compressed load is the earlier instruction, as
  // a gather with a bad id holds the request stage until it faults.)
  assign idx_fault = idx_due || z_fault;
  assign fault_stream = z_fault;
  assign idx_fault_pc = z_fault ? j_pc[jh] : g_pc;
  assign idx_fault_pos = z_fault ? {15'd0, z_info} : {16'd0, id_bad_pos};

  // The id banks: 1-write 1-read memories (a beat's ids are consecutive).
  logic [KM*32-1:0] id_q;
  wire [15:0] g_idbank = rq_y % 16'(KM);
  wire [LIDB-1:0] g_idrow = LIDB'(rq_y / 16'(KM));
  for (genvar b = 0; b < KM; b++) begin : g_idb
    logic [31:0] mem[0:IDB-1];
    logic we;
    logic [31:0] wd;
    logic [LIDB-1:0] wa;
    logic [19:0] jk, jb;
    always_comb begin
      {we, wd, wa, jk, jb} = '0;
      for (int k = 0; k < KM; k++) begin
        jk = id_j0 + 20'(k);
        jb = jk % 20'(KM);
        if (id_done[k] && jb == 20'(b)) begin
          we = 1'b1;
          wd = id_val[32*k+:32];
          wa = LIDB'(jk / 20'(KM));
        end
      end
    end
    always_ff @(posedge clk) begin
      if (we) mem[wa] <= wd;
    end
    assign id_q[32*b+:32] = mem[g_idrow];
  end
  assign g_id = id_q[32*g_idbank+:32];

  // ------------------------------------------------------------ the stage
  logic [PW-1:0] wptr, rptr;
  wire [PW-1:0] cnt = wptr - rptr;     // bytes held
  wire [LB-1:0] wlo = wptr[LB-1:0];
  wire [LD-1:0] wrow = wptr[LB+LD-1:LB];
  logic [LB-1:0] rlo;
  logic [LD-1:0] rrow;
  assign rlo = rptr[LB-1:0];
  assign rrow = rptr[LB+LD-1:LB];

  // The beat's lanes, rotated so that lane l lands in bank (wptr + l - off) mod B.
  // Only in a beat's cycle (no bank is written otherwise): as a procedural
  // block under rd_valid a simulator skips the wide rotation when idle.
  logic [B*8-1:0] wvec, wrot;
  logic [2*B*8-1:0] wdbl;
  wire [LB-1:0] wsh = wlo - LB'(b_off);
  always_comb begin
    if (rd_valid) begin
      wvec = '0;
      wvec[W*8-1:0] = rd_data;
      wdbl = {wvec, wvec} << {wsh, 3'b000};
      wrot = wdbl[2*B*8-1:B*8];
    end else begin
      {wvec, wdbl, wrot} = '0;
    end
  end

  logic [B*8-1:0] bq;                  // bank k's byte at stream position rptr + ((k - rptr) mod B)
  for (genvar k = 0; k < B; k++) begin : g_bank
    localparam logic [LB-1:0] K = LB'(k);
    logic [7:0] mem[0:DEPTH-1];
    // Offset of bank k from the pointer; it wraps to the next bank row iff
    // k < ptr mod B, i.e. offset > B - 1 - ptr mod B.
    wire [LB-1:0] woff = K - wlo;
    wire [LB-1:0] roff = K - rlo;
    wire wen = {1'b0, woff} < (LB + 1)'(nb);
    wire [LD-1:0] wr_row = (woff > ~wlo) ? wrow + LD'(1) : wrow;
    wire [LD-1:0] rd_row = (roff > ~rlo) ? rrow + LD'(1) : rrow;
    always_ff @(posedge clk) begin
      if (wen) mem[wr_row] <= wrot[8*k+:8];
    end
    assign bq[8*k+:8] = mem[rd_row];
  end

  // ------------------------------------------------------ the chunk walk
  // Per load, from its start (entry j_wp) to its last chunk write (j_rp).
  logic        j_acc  [0:JOBS-1];
  logic        j_push [0:JOBS-1];
  logic [31:0] j_pc   [0:JOBS-1];
  logic [ 7:0] j_padv [0:JOBS-1];
  logic [16:0] j_ny   [0:JOBS-1];    // Y
  logic [16:0] j_nx   [0:JOBS-1];    // X
  logic [ 7:0] j_ylo  [0:JOBS-1];    // data rows [pad_top, pad_top + rows)
  logic [16:0] j_yhi  [0:JOBS-1];
  logic [ 7:0] j_xlo  [0:JOBS-1];    // data columns [pad_left, pad_left + cols)
  logic [16:0] j_xhi  [0:JOBS-1];
  logic [LCW-1:0] j_lc0 [0:JOBS-1];  // col mod COLS
  logic [15:0] j_row0 [0:JOBS-1];    // local row of chunk 0
  logic        j_zm   [0:JOBS-1];    // a compressed stream of
  logic [31:0] j_zlen [0:JOBS-1];    // ... stride bytes
  logic [15:0] j_cols [0:JOBS-1];    // ... rows of cols elements
  always_ff @(posedge clk) begin
    if (start_load) begin
      j_zm[j_wp[LJ-1:0]] <= h_zm;
      j_zlen[j_wp[LJ-1:0]] <= h_stride;
      j_cols[j_wp[LJ-1:0]] <= h_cols;
      j_acc[j_wp[LJ-1:0]] <= h_acc;
      j_push[j_wp[LJ-1:0]] <= h_push;
      j_pc[j_wp[LJ-1:0]] <= head_pc;
      j_padv[j_wp[LJ-1:0]] <= h_padv;
      j_ny[j_wp[LJ-1:0]] <= h_ny;
      j_nx[j_wp[LJ-1:0]] <= h_nx;
      j_ylo[j_wp[LJ-1:0]] <= h_ptop;
      j_yhi[j_wp[LJ-1:0]] <= 17'(h_ptop) + 17'(h_rows);
      j_xlo[j_wp[LJ-1:0]] <= h_pleft;
      j_xhi[j_wp[LJ-1:0]] <= 17'(h_pleft) + 17'(h_cols);
      j_lc0[j_wp[LJ-1:0]] <= h_lc0;
      j_row0[j_wp[LJ-1:0]] <= h_row0;
    end
  end

  // Walk state of the next chunk of the oldest load (wk_fresh: its first).
  logic        wk_fresh;
  logic [16:0] wk_y, wk_x0;          // padded row, padded column of the chunk
  logic [15:0] wk_row, wk_rowy;      // its local row; local row of (y, first block)

  wire [LJ-1:0] jh = j_rp[LJ-1:0];
  wire        cur_acc = j_acc[jh];
  wire [ 7:0] padv = j_padv[jh];
  wire [16:0] ny = j_ny[jh];
  wire [16:0] c_y = wk_fresh ? 17'd0 : wk_y;
  wire [16:0] c_x0 = wk_fresh ? 17'd0 : wk_x0;
  wire [15:0] c_row = wk_fresh ? j_row0[jh] : wk_row;
  wire [15:0] c_rowy = wk_fresh ? j_row0[jh] : wk_rowy;
  wire [16:0] c_lcol = (c_x0 == 17'd0) ? 17'(j_lc0[jh]) : 17'd0;
  wire [16:0] rem = j_nx[jh] - c_x0;
  wire [16:0] room = 17'(COLS) - c_lcol;
  wire        row_end = rem <= room;  // last column block of row y
  wire [16:0] len = row_end ? rem : room;
  wire [16:0] x1 = c_x0 + len;
  wire        in_rows = c_y >= 17'(j_ylo[jh]) && c_y < j_yhi[jh];
  wire [16:0] ux0 = (c_x0 > 17'(j_xlo[jh])) ? c_x0 : 17'(j_xlo[jh]);
  wire [16:0] ux1 = (x1 < j_xhi[jh]) ? x1 : j_xhi[jh];
  wire        has_data = in_rows && ux1 > ux0;
  wire [16:0] nu = has_data ? ux1 - ux0 : 17'd0;      // DRAM elements in the chunk
  wire [16:0] dsh = c_lcol + (ux0 - c_x0);            // local column of the first
  wire        last = row_end && c_y == ny - 17'd1;

  // ------------------------------------------- the compressed-row expander
  // The head job's record at rptr (only at a data chunk of a compressed
  // load: the prefix sums and crossbar are skipped otherwise).
  wire        cur_zm = j_zm[jh];
  wire        z_on = have_job && cur_zm && has_data;
  wire [15:0] z_cols = j_cols[jh];
  wire [16:0] z_mb = ({1'b0, z_cols} + 17'd7) >> 3;
  logic [31:0] z_used;               // stream bytes of the head job's records popped
  wire [32:0] z_left = {1'b0, j_zlen[jh]} - {1'b0, z_used};
  logic [PW-1:0] wptr_d;             // wptr one cycle ago
  wire [PW-1:0] cnt_d = wptr_d - rptr;
  logic [15:0] z_len;                // the extent: mask bytes + bits set in them
  logic        z_tail;               // a bit set at or past cols
  logic [COLS*8-1:0] z_row;          // the expanded row (element x at byte x)
  logic [LB-1:0] z_at;               // window byte of the next stored byte
  logic [2*B*8-1:0] z_dbl;
  logic [B*8-1:0] z_win;             // the stage from rptr on: byte j = stream byte rptr + j
  always_comb begin
    {z_len, z_tail, z_row, z_at, z_dbl, z_win} = '0;
    if (z_on) begin
      z_dbl = {bq, bq} >> {rlo, 3'b000};
      z_win = z_dbl[B*8-1:0];
      // Mask bit i is bit i of the window (bit i % 8 of byte i / 8).
      z_len = z_mb[15:0];
      for (int i = 0; i < 8 * MBX; i++) begin
        if (32'(i) < 32'(z_mb) * 32'd8 && z_win[i]) begin
          z_len = z_len + 16'd1;
          if (32'(i) >= 32'(z_cols)) z_tail = 1'b1;
        end
      end
      // Element x is the stored byte after the mask numbered by the bits
      // set below x (a prefix sum), or 0.
      z_at = LB'(z_mb);
      for (int x = 0; x < COLS; x++) begin
        if (32'(x) < 32'(z_cols) && z_win[x]) begin
          z_row[8*x+:8] = z_win[{z_at, 3'b000}+:8];
          z_at = z_at + LB'(1);
        end
      end
    end
  end
  // The extent as far as the stream goes; ready once held a cycle. Bad: a
  // bit past the row, an extent past the stream, or bytes after the last
  // record (ERROR_INFO rows, else the row).
  wire        z_cut = {17'd0, z_len} > z_left;
  wire [32:0] z_need = z_cut ? z_left : {17'd0, z_len};
  wire        z_ready = {{(33 - PW) {1'b0}}, cnt_d} >= z_need;
  wire        z_lastrow = c_y == j_yhi[jh] - 17'd1;
  wire        z_over = z_lastrow && {17'd0, z_len} < z_left;
  wire        z_bad = z_tail || z_cut || z_over;
  wire        z_fault = z_on && z_ready && z_bad;
  wire [16:0] z_info = (z_tail || z_cut) ? c_y - 17'(j_ylo[jh]) : j_yhi[jh] - 17'(j_ylo[jh]);
  // The row's last data chunk pops the record.
  wire        z_pop = z_on && x1 >= j_xhi[jh];

  wire [PW-1:0] need = cur_zm ? (z_pop ? PW'(z_len) : PW'(0)) : cur_acc ? PW'(nu << 2) : PW'(nu);
  wire        wr = have_job && (cur_zm ? (!has_data || (z_ready && !z_bad)) : cnt >= need);

  // The chunk's bytes: lane j = stream byte rptr + j - dsh*e.
  wire [LB-1:0] dshb = cur_acc ? LB'(dsh << 2) : LB'(dsh);
  wire [LB-1:0] rsh = rlo - dshb;
  // Only in a chunk write's cycle (its data and enables mean nothing
  // otherwise), so a simulator skips the rotation and the lanes when idle.
  logic [2*B*8-1:0] rdbl;
  logic [CB*8-1:0] rot;
  logic [COLS-1:0] be, isd;
  // Lane c of a compressed row's chunk holds element c - dsh + (ux0 - pad_left).
  logic [LCW-1:0] z_x;
  always_comb begin
    if (wr) begin
      rdbl = {bq, bq} >> {rsh, 3'b000};
      rot = rdbl[CB*8-1:0];
      for (int c = 0; c < COLS; c++) begin
        be[c] = 17'(c) >= c_lcol && 17'(c) < c_lcol + len;
        isd[c] = has_data && 17'(c) >= dsh && 17'(c) < dsh + nu;
        z_x = LCW'(17'(c) - dsh + ux0 - 17'(j_xlo[jh]));
        sp_data[8*c+:8] = !isd[c] ? padv : cur_zm ? z_row[{z_x, 3'b000}+:8] : rot[8*c+:8];
        ac_data[32*c+:32] = isd[c] ? rot[32*c+:32] : {{24{padv[7]}}, padv};
      end
    end else begin
      {rdbl, rot, be, isd, sp_data, ac_data, z_x} = '0;
    end
  end
  assign sp_we = wr && !cur_acc;
  assign ac_we = wr && cur_acc;
  assign sp_row = c_row;
  assign ac_row = c_row;
  assign sp_be = be;
  assign ac_be = be;

  always_ff @(posedge clk) begin
    if (rst) begin
      z_used <= 32'd0;
    end else if (wr && last) begin
      z_used <= 32'd0;
    end else if (wr && z_pop) begin
      z_used <= z_used + 32'(z_len);
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      wk_fresh <= 1'b1;
    end else if (wr) begin
      if (!row_end) begin
        wk_fresh <= 1'b0;
        wk_y <= c_y;
        wk_x0 <= x1;
        wk_row <= c_row + ny[15:0];
        wk_rowy <= c_rowy;
      end else if (last) begin
        wk_fresh <= 1'b1;
      end else begin
        wk_fresh <= 1'b0;
        wk_y <= c_y + 17'd1;
        wk_x0 <= 17'd0;
        wk_row <= c_rowy + 16'd1;
        wk_rowy <= c_rowy + 16'd1;
      end
    end
  end

  wire j_pop = wr && last;
  wire [LJ:0] njobs = j_wp - j_rp;
  wire [PW:0] cnt_next = {1'b0, cnt} + (PW + 1)'(nb) - (wr ? {1'b0, need} : (PW + 1)'(0));
  logic ovf;
  always_ff @(posedge clk) begin
    if (rst) begin
      j_wp <= '0;
      j_rp <= '0;
      wptr <= '0;
      wptr_d <= '0;
      rptr <= '0;
      ovf <= 1'b0;
    end else begin
      wptr_d <= wptr;
      if (start_load) j_wp <= j_wp + (LJ + 1)'(1);
      if (j_pop) j_rp <= j_rp + (LJ + 1)'(1);
      wptr <= wptr + PW'(nb);
      if (wr) rptr <= rptr + need;
      if (cnt_next > (PW + 1)'(CAP)) ovf <= 1'b1;
      if (start_load && !j_pop && njobs == (LJ + 1)'(JOBS)) ovf <= 1'b1;
      if (start_load && h_gather && 32'(h_rows) > 32'(IDS)) ovf <= 1'b1;
      if (start_load && h_zm && 32'(h_cols) > 32'(COLS)) ovf <= 1'b1;
      if (bf_next > (LBU + 2)'(BURSTS)) ovf <= 1'b1;
    end
  end
  assign stage_overflow = ovf;

  // ------------------------------------------------- trace and counters
  assign fin_valid = start_sync || j_pop;
  assign fin_pc = start_sync ? head_pc : j_pc[jh];
  assign push_next = start_sync ? h_push : j_pop && j_push[jh];
  assign idle = !have_job;
  assign c_busy = start || have_job;
  assign c_stall = head_valid && can_start && !tok_ok;
  assign c_spad_wr = sp_we;
  assign c_acc_wr = ac_we;

  // Fields the unit does not use (pops are the top's; the rest reserved).
  wire unused_ok = &{1'b0, head_instr[255:`SYS_LOAD_END], head_instr[15:8], SPAD_ROWS[0], ACC_ROWS[0],
                     id_next[CATB*8-1:56], id_sh[CATB*8-1:KM*64],
                     wdbl[B*8-1:0], rdbl[2*B*8-1:CB*8], z_dbl[2*B*8-1:B*8]};
endmodule
