// dma_store: the STORE DMA unit (ISA.md §4 "LOAD and STORE", queue store):
// `store` (scratchpad / accumulator block -> DRAM) and `sync` with
// queue=store, cycle-exact with sim::machine (start_dma, arbitrate, DmaJob,
// next_ready) and sim::dma (for_each_chunk, chunk_dram, BurstPlan,
// store_ready, store_copy).
//
// Structure and timing (cycle t sees the registers as they stand at its
// start; effects are registered at the edge ending t):
// - Request stage (`job_*`, `rg_*`): holds a `store` from its start s until
//   its last burst is granted. The next `store` may start in the cycle after
//   that grant; a `sync` only when, in addition, every earlier store has
//   finished (no burst descriptor left). sync: start s, fin_valid and
//   push_prev in cycle s (finish and push at s + 1), busy one cycle.
// - Chunk reads (`rd_*`): chunk q (one local-row read, order of
//   for_each_chunk: DRAM rows, then column blocks; row = addr + cb * rows + y)
//   is read in cycle s + 1 + q. The model's r = max(s, previous store's last
//   read) is always s here: a store's last grant comes after its last read
//   (its last chunk holds bytes of its last burst), and the next store starts
//   after that grant. So only the store in the request stage ever reads.
// - Byte stream (`stage`): the chunks in order produce the block's DRAM bytes
//   in order (one range if stride == cols * e, else one range per DRAM row;
//   bursts in range order), so a circular byte FIFO of STAGE_BYTES connects
//   the reads (push <= COLS*4 bytes a cycle, visible the next cycle) to the
//   write beats (pop <= W bytes a beat). It is B = 2^ceil(log2(COLS*4)) byte
//   banks of STAGE_BYTES / B bytes: any B consecutive stream bytes lie in B
//   distinct banks, so a push and a pop are each one rotation.
// - Bursts (BurstPlan::of / split_bursts): burst b of the current range is
//   computed from its first beat (256-beat and 4 KiB limits); it is requested
//   (req_valid) once the FIFO held, at the start of the cycle, every stream
//   byte up to its last one: that is the cycle after the chunk holding its
//   last byte was read, store_ready's start + 2 + q. It is never before
//   s + 2, and the next burst is considered from the cycle after a grant
//   (next_ready's max(s + 1, last_grant + 1, ready)). req_valid is held until
//   req_grant.
// - Write beats: each grant pushes a descriptor (beats, byte lanes of the
//   first and the last beat, last-of-store, push flag, pc) into a FIFO; the
//   harness takes beats in grant order, one per cycle with wr_ready. The
//   beat's useful lanes (strobes; lanes outside the range are 0) are popped
//   from the byte FIFO. A burst's data cannot move before grant + 1 (DRAM
//   latency >= 1), when its descriptor is visible. When the last beat of a
//   store's last burst moves in cycle f - 1, fin_valid and push_prev (bit 10)
//   are asserted: the store finishes at f = d + n of that burst.
// - idle is registered state only (no request-stage store, no descriptor):
//   an instruction starting in cycle t is not yet counted in t.
//
// Counters: c_busy = a started store/sync unfinished (start cycle included);
// c_stall = head waiting only for its tokens; c_spad_rd / c_acc_rd = a chunk
// read this cycle (the model adds the same totals at the last grant).
//
// stage_overflow (sticky): the byte FIFO would hold more than STAGE_BYTES
// (the model never waits for space), or a grant found the descriptor FIFO
// (DESC_DEPTH = 64 >= dram.max_outstanding) full.
//
// Parameters: COLS (array columns, 2..256), W (DRAM bytes per beat, a power
// of two <= COLS), SPAD_ROWS / ACC_ROWS (buffer rows, the top's buffers),
// STAGE_BYTES (a power of two, >= 2 * B).
`include "systole_isa.vh"

module dma_store #(
    parameter int COLS = 4,
    parameter int W = 4,
    parameter int SPAD_ROWS = 4096,
    parameter int ACC_ROWS = 256,
    parameter int STAGE_BYTES = 8192
) (
    input  logic               clk,
    input  logic               rst,
    // Head of the STORE queue.
    input  logic               head_valid,
    input  logic [      255:0] head_instr,
    input  logic [       31:0] head_pc,
    input  logic               tok_ok,
    output logic               start,
    output logic               push_prev,
    // Write requests (AW), granted by the top's arbiter.
    output logic               req_valid,
    output logic [       31:0] req_addr,     // beat0 * W
    output logic [        8:0] req_beats,
    input  logic               req_grant,
    // Write data (W): one beat per cycle with wr_ready.
    input  logic               wr_ready,
    output logic [    W*8-1:0] wr_data,
    output logic [      W-1:0] wr_strb,
    output logic               wr_last,
    // Buffer read ports (asynchronous).
    output logic [       15:0] sp_row,
    input  logic [ COLS*8-1:0] sp_q,
    output logic [       15:0] ac_row,
    input  logic [COLS*32-1:0] ac_q,
    // Trace, state, counters.
    output logic               fin_valid,
    output logic [       31:0] fin_pc,
    output logic               idle,
    output logic               c_busy,
    output logic               c_stall,
    output logic               c_spad_rd,
    output logic               c_acc_rd,
    output logic               stage_overflow
);
  // ------------------------------------------------------------ constants
  localparam int LW = $clog2(W);  // W = 2^LW
  localparam int LNW = (LW > 0) ? LW : 1;  // lane index width
  localparam int PL = 12 - LW;  // beats per 4 KiB page = 2^PL
  localparam int SRCB = COLS * 4;  // bytes of the widest source row
  localparam int BL = $clog2(SRCB);
  localparam int B = 1 << BL;  // byte banks of the stage FIFO
  localparam int DEPTH = STAGE_BYTES / B;  // bytes per bank
  localparam int DLW = $clog2(DEPTH);
  localparam int DD = 64;  // descriptor FIFO depth
  localparam int DDW = 6;
  localparam bit COLS_POW2 = (COLS & (COLS - 1)) == 0;
  localparam int COLS_LOG2 = $clog2(COLS);
  localparam int CW = $clog2(COLS + 1);  // a count 0..COLS
  localparam int AW = 34;  // byte / beat addresses (DRAM spans end <= 2^32)
  localparam logic [7:0] OP_SYNC = `SYS_OP_SYNC;
  localparam logic [LNW-1:0] LANE_LAST = LNW'(W - 1);

  logic live;
  assign live = !rst;

  // ------------------------------------------------------------ head decode
  logic [7:0] h_op;
  logic h_sync, h_acc, h_contig;
  logic [31:0] h_dram, h_stride;
  logic [15:0] h_rows, h_cols, h_addr, h_col, h_first_cb;
  logic [17:0] h_row_bytes;
  logic [CW-1:0] h_lcol;
  logic [AW-1:0] h_total;
  logic [15:0] h_base_row;
  assign h_op = head_instr[`SYS_OPCODE_LO+:`SYS_OPCODE_W];
  assign h_sync = h_op == OP_SYNC;
  assign h_acc = head_instr[`SYS_STORE_BUF_LO+:`SYS_STORE_BUF_W] == 2'(`SYS_BUF_ACC);
  assign h_dram = head_instr[`SYS_STORE_DRAM_LO+:`SYS_STORE_DRAM_W];
  assign h_stride = head_instr[`SYS_STORE_STRIDE_LO+:`SYS_STORE_STRIDE_W];
  assign h_rows = head_instr[`SYS_STORE_ROWS_LO+:`SYS_STORE_ROWS_W];
  assign h_cols = head_instr[`SYS_STORE_COLS_LO+:`SYS_STORE_COLS_W];
  assign h_addr = head_instr[`SYS_STORE_ADDR_LO+:`SYS_STORE_ADDR_W];
  assign h_col = head_instr[`SYS_STORE_COL_LO+:`SYS_STORE_COL_W];
  assign h_row_bytes = h_acc ? {h_cols, 2'b00} : {2'b00, h_cols};
  assign h_contig = h_stride == 32'(h_row_bytes);
  assign h_total = AW'(h_rows) * AW'(h_row_bytes);
  generate
    if (COLS_POW2) begin : g_pow2
      assign h_first_cb = h_col >> COLS_LOG2;
      assign h_lcol = CW'(h_col & 16'(COLS - 1));
    end else begin : g_div
      assign h_first_cb = h_col / 16'(COLS);
      assign h_lcol = CW'(h_col % 16'(COLS));
    end
  endgenerate
  // Local row of chunk (y = 0, first column block); legal blocks end <= 65536.
  assign h_base_row = h_addr + h_first_cb * h_rows;

  // ------------------------------------------------------------ state
  // Request stage.
  logic job_active, job_push;
  logic [31:0] job_pc, job_wp0, job_stride;
  logic [17:0] job_row_bytes;
  logic [AW-1:0] rg_lo, rg_hi, rg_sbase, cur_beat;
  logic [15:0] rg_left;
  // Chunk reads.
  logic rd_active, rd_acc;
  logic [15:0] rd_row, rd_rowy, rd_rem, rd_yleft, rd_rows, rd_cols;
  logic [CW-1:0] rd_lcol, rd_lcol0;
  // Stage FIFO pointers (free-running byte counts).
  logic [31:0] wp, rp;
  // Descriptor FIFO.
  logic [8:0] d_beats[DD];
  logic [LNW-1:0] d_fl[DD], d_ll[DD];
  logic d_last[DD], d_push[DD];
  logic [31:0] d_pc[DD];
  logic [DDW-1:0] d_head, d_tail;
  logic [DDW:0] d_cnt;
  logic [8:0] bk;  // beat of the head burst
  logic ovf;

  // ------------------------------------------------------------ start
  logic can_start;
  assign can_start = live && head_valid && !job_active && (!h_sync || d_cnt == '0);
  assign start = can_start && tok_ok;
  assign c_stall = can_start && !tok_ok;

  // ------------------------------------------------------------ chunk read
  logic [CW-1:0] rd_len;
  logic [BL:0] rd_n;  // bytes pushed this cycle
  logic [BL-1:0] rd_lo;  // first byte of the chunk in the source row
  logic rd_row_end;
  always_comb begin
    rd_len = CW'(COLS) - rd_lcol;
    if (32'(rd_rem) < 32'(rd_len)) rd_len = CW'(rd_rem);
    rd_n = rd_acc ? (BL + 1)'({rd_len, 2'b00}) : (BL + 1)'(rd_len);
    rd_lo = rd_acc ? BL'({rd_lcol, 2'b00}) : BL'(rd_lcol);
    if (!rd_active) rd_n = '0;
  end
  assign rd_row_end = 32'(rd_rem) == 32'(rd_len);
  assign sp_row = rd_row;
  assign ac_row = rd_row;
  assign c_spad_rd = live && rd_active && !rd_acc;
  assign c_acc_rd = live && rd_active && rd_acc;

  // ------------------------------------------------------------ stage FIFO
  // Push: source byte k of the row goes to bank (wp + k - rd_lo) mod B.
  logic [B*8-1:0] src, src_rot;
  logic [2*B*8-1:0] src_dbl;
  logic [BL-1:0] push_rot;
  logic [B-1:0] st_we;
  logic [B*DLW-1:0] st_wrow, st_rrow;
  logic [B*8-1:0] st_rdat;
  logic [BL-1:0] wp_lo, rp_lo;
  logic [DLW-1:0] wp_row, rp_row;
  assign wp_lo = wp[BL-1:0];
  assign rp_lo = rp[BL-1:0];
  assign wp_row = wp[BL+:DLW];
  assign rp_row = rp[BL+:DLW];
  assign push_rot = rd_lo - wp_lo;
  logic [B*BL-1:0] push_idx;
  // The push side is evaluated only in a cycle that reads a chunk (nothing
  // is pushed otherwise), the pop side only while a beat is due: as
  // procedural blocks under those conditions a simulator skips them (it
  // evaluates every assign each cycle); synthesis sees a mux more.
  always_comb begin
    if (rd_active) begin
      src = '0;
      if (rd_acc) src[COLS*32-1:0] = ac_q;
      else src[COLS*8-1:0] = sp_q;
      src_dbl = {src, src};
      src_rot = src_dbl[push_rot*8+:B*8];
      for (int b = 0; b < B; b++) begin
        // Index of bank b's byte in this push, (b - wp) mod B.
        push_idx[b*BL+:BL] = BL'(b) - wp_lo;
        st_we[b] = live && (BL + 1)'(push_idx[b*BL+:BL]) < rd_n;
        st_wrow[b*DLW+:DLW] = wp_row + DLW'(BL'(b) < wp_lo);
      end
    end else begin
      {src, src_dbl, src_rot, push_idx, st_we, st_wrow} = '0;
    end
  end
  for (genvar b = 0; b < B; b++) begin : g_bank
    logic [7:0] mem[0:DEPTH-1];
    always_ff @(posedge clk) begin
      if (st_we[b]) mem[st_wrow[b*DLW+:DLW]] <= src_rot[b*8+:8];
    end
    assign st_rdat[b*8+:8] = mem[st_rrow[b*DLW+:DLW]];
  end

  // ------------------------------------------------------------ bursts
  logic [AW-1:0] lo_beat, last_beat, page_end, end_beat, use_end, b_end, pushed;
  logic [8:0] beats;
  logic range_last, burst_last, burst_ready;
  logic [LNW-1:0] b_fl, b_ll;
  always_comb begin
    lo_beat = rg_lo >> LW;
    last_beat = (rg_hi - 1) >> LW;
    page_end = ((cur_beat >> PL) + 1) << PL;
    end_beat = last_beat + 1;
    if (cur_beat + AW'(`SYS_BURST_MAX_BEATS) < end_beat) end_beat = cur_beat + AW'(`SYS_BURST_MAX_BEATS);
    if (page_end < end_beat) end_beat = page_end;
    use_end = end_beat << LW;
    if (rg_hi < use_end) use_end = rg_hi;
  end
  assign beats = 9'(end_beat - cur_beat);
  assign range_last = end_beat == last_beat + 1;
  assign burst_last = range_last && rg_left == 16'd1;
  assign b_end = rg_sbase + (use_end - rg_lo);
  logic [31:0] job_pushed;  // bytes this store pushed so far (wraps with wp)
  assign job_pushed = wp - job_wp0;
  assign pushed = AW'(job_pushed);
  assign burst_ready = job_active && pushed >= b_end;
  assign b_fl = cur_beat == lo_beat ? LNW'(rg_lo) & LANE_LAST : '0;
  assign b_ll = range_last ? LNW'(rg_hi - 1) & LANE_LAST : LANE_LAST;
  assign req_valid = live && burst_ready;
  assign req_addr = 32'(cur_beat << LW);
  assign req_beats = beats;
  logic grant;
  assign grant = req_valid && req_grant;

  // ------------------------------------------------------------ write beats
  logic d_any, beat_go, beat_last;
  logic [LNW-1:0] fl, ll, pop_off;
  logic [LNW:0] npop;
  logic [2*B*8-1:0] rd_dbl;
  logic [BL-1:0] pop_rot;
  assign d_any = d_cnt != '0;
  always_comb begin
    if (d_any) begin
      // Pop side: bank b holds stream byte rp + ((b - rp) mod B).
      for (int b = 0; b < B; b++) st_rrow[b*DLW+:DLW] = rp_row + DLW'(BL'(b) < rp_lo);
    end else begin
      st_rrow = '0;
    end
  end
  assign beat_last = bk == d_beats[d_head] - 9'd1;
  assign fl = bk == 9'd0 ? d_fl[d_head] : '0;
  assign ll = beat_last ? d_ll[d_head] : LANE_LAST;
  assign beat_go = live && d_any && wr_ready;
  assign npop = beat_go ? (LNW + 1)'(ll - fl) + 1'b1 : '0;
  always_comb begin
    for (int j = 0; j < W; j++) wr_strb[j] = live && d_any && LNW'(j) >= fl && LNW'(j) <= ll;
  end
  // Lane j (>= fl) carries stream byte rp + j - fl, in bank (rp - fl + j) mod B.
  assign pop_off = fl;
  assign pop_rot = rp_lo - BL'(pop_off);
  always_comb begin
    if (d_any) begin
      rd_dbl  = {st_rdat, st_rdat};
      wr_data = rd_dbl[pop_rot*8+:W*8];
    end else begin
      rd_dbl  = '0;
      wr_data = '0;
    end
  end
  assign wr_last = d_any && beat_last;

  // Finish: the last beat of a store's last burst (or a sync's start).
  logic tail_fin;
  assign tail_fin = beat_go && beat_last && d_last[d_head];
  assign fin_valid = tail_fin || (start && h_sync);
  assign fin_pc = tail_fin ? d_pc[d_head] : head_pc;
  assign push_prev = tail_fin ? d_push[d_head] : start && h_sync && head_instr[`SYS_DEP_PUSH_PREV];

  assign idle = !job_active && !d_any;
  assign c_busy = start || job_active || d_any;
  assign stage_overflow = ovf;

  // Occupancy after this cycle's push and pop.
  logic [31:0] occ;
  logic [32:0] occ_next;
  assign occ = wp - rp;
  assign occ_next = 33'(occ) + 33'(rd_n) - 33'(npop);

  // ------------------------------------------------------------ registers
  always_ff @(posedge clk) begin
    if (rst) begin
      job_active <= 1'b0;
      rd_active <= 1'b0;
      wp <= '0;
      rp <= '0;
      d_head <= '0;
      d_tail <= '0;
      d_cnt <= '0;
      bk <= '0;
      ovf <= 1'b0;
    end else begin
      // Start of a store: request stage and chunk walk.
      if (start && !h_sync) begin
        job_active <= 1'b1;
        job_pc <= head_pc;
        job_push <= head_instr[`SYS_DEP_PUSH_PREV];
        job_wp0 <= wp;
        job_stride <= h_stride;
        job_row_bytes <= h_row_bytes;
        rg_lo <= AW'(h_dram);
        rg_hi <= AW'(h_dram) + (h_contig ? h_total : AW'(h_row_bytes));
        rg_sbase <= '0;
        rg_left <= h_contig ? 16'd1 : h_rows;
        cur_beat <= AW'(h_dram) >> LW;
        rd_active <= 1'b1;
        rd_acc <= h_acc;
        rd_row <= h_base_row;
        rd_rowy <= h_base_row;
        rd_rem <= h_cols;
        rd_yleft <= h_rows;
        rd_rows <= h_rows;
        rd_cols <= h_cols;
        rd_lcol <= h_lcol;
        rd_lcol0 <= h_lcol;
      end
      // Chunk read.
      if (rd_active) begin
        if (rd_row_end) begin
          if (rd_yleft == 16'd1) rd_active <= 1'b0;
          rd_yleft <= rd_yleft - 16'd1;
          rd_rowy <= rd_rowy + 16'd1;
          rd_row <= rd_rowy + 16'd1;
          rd_rem <= rd_cols;
          rd_lcol <= rd_lcol0;
        end else begin
          rd_row <= rd_row + rd_rows;
          rd_rem <= rd_rem - 16'(rd_len);
          rd_lcol <= '0;
        end
      end
      wp <= wp + 32'(rd_n);
      rp <= rp + 32'(npop);
      if (occ_next > 33'(STAGE_BYTES)) ovf <= 1'b1;
      // Grant: descriptor, next burst / range / end of the request stage.
      if (grant) begin
        d_beats[d_tail] <= beats;
        d_fl[d_tail] <= b_fl;
        d_ll[d_tail] <= b_ll;
        d_last[d_tail] <= burst_last;
        d_push[d_tail] <= job_push;
        d_pc[d_tail] <= job_pc;
        d_tail <= d_tail + 1'b1;
        if (d_cnt == (DDW + 1)'(DD) && !(beat_go && beat_last)) ovf <= 1'b1;
        if (burst_last) job_active <= 1'b0;
        if (range_last) begin
          rg_left <= rg_left - 16'd1;
          rg_lo <= rg_lo + AW'(job_stride);
          rg_hi <= rg_hi + AW'(job_stride);
          rg_sbase <= rg_sbase + AW'(job_row_bytes);
          cur_beat <= (rg_lo + AW'(job_stride)) >> LW;
        end else begin
          cur_beat <= end_beat;
        end
      end
      // Write beat.
      if (beat_go) begin
        if (beat_last) begin
          bk <= '0;
          d_head <= d_head + 1'b1;
        end else begin
          bk <= bk + 9'd1;
        end
      end
      d_cnt <= d_cnt + (DDW + 1)'(grant) - (DDW + 1)'(beat_go && beat_last);
    end
  end

  // Bits the unit does not need (pops are the top's; reserved bits are
  // zero); SPAD_ROWS / ACC_ROWS size the top's buffers (rows are 16-bit).
  wire unused_ok = &{1'b0, 32'(SPAD_ROWS), 32'(ACC_ROWS), head_instr[255:`SYS_STORE_END], head_instr[15:12],
                     head_instr[`SYS_DEP_PUSH_NEXT], head_instr[`SYS_DEP_POP_NEXT],
                     head_instr[`SYS_DEP_POP_PREV]};
endmodule
