// accel: the whole systole accelerator of isa/ISA.md — AXI4-Lite register
// slave, AXI4 memory master, fetch and dispatch, the LOAD / COMPUTE / STORE
// queues with their dependency-token counters, the memory arbiter, the
// scratchpad and accumulator, performance counters, faults and the watchdog.
// The DMA engines (dma_load, dma_store), the COMPUTE unit (compute: array +
// post-processor) and the dispatch check (check) are their own modules.
//
// Timing is ISA.md §4, to the cycle; the Rust model (sim::Machine) is the
// same machine. Per cycle, in the model's phase order:
//   0. token pushes due now take effect (units signal them the cycle before,
//      `pend_*` registers hold them), a push beyond 255 faults;
//   1. the arbiter grants at most one memory request (round-robin fetch,
//      LOAD, STORE; `m_ready` is the DRAM model's "a slot is free");
//   2. dispatch moves the fetch buffer's head into its queue (or faults, or
//      completes `finish`);
//   3. each queue's head may start (the unit decides; a fault this cycle
//      withholds `tok_ok`, so nothing starts).
// The run is cycle 0 from the cycle after the CTRL.start write; every unit
// is held in reset while not running and in that write's cycle.
//
// The external ports have fixed maximum widths (64-byte data beats) so the
// harness's C++ does not depend on the configuration; only the low W bytes
// are used.

`include "systole_isa.vh"

module accel #(
    parameter int ROWS = 4,
    parameter int COLS = 4,
    parameter int SPAD_ROWS = 4096,
    parameter int ACC_ROWS = 256,
    parameter int W = 4,                       // DRAM bytes per beat
    parameter logic [63:0] MEM_BYTES = 64'd16777216,  // device memory size
    parameter logic [63:0] FINGERPRINT = 64'd0,
    parameter int LOAD_STAGE_BYTES = 4096,
    parameter int STORE_STAGE_BYTES = 8192,
    parameter int LOAD_IDS = 1024,             // ids of one indexed load the LOAD unit holds
    parameter int INT4 = 0,                    // 1: array.weight_precisions lists int4
    parameter int SPARSE = 0                   // 1: array.sparsity_2_4 (2:4-sparse PEs)
) (
    input  logic         clk,
    input  logic         rst_n,
    // AXI4-Lite slave (registers).
    input  logic         s_awvalid,
    output logic         s_awready,
    input  logic [ 11:0] s_awaddr,
    input  logic         s_wvalid,
    output logic         s_wready,
    input  logic [ 31:0] s_wdata,
    output logic         s_bvalid,
    input  logic         s_bready,
    output logic [  1:0] s_bresp,
    input  logic         s_arvalid,
    output logic         s_arready,
    input  logic [ 11:0] s_araddr,
    output logic         s_rvalid,
    input  logic         s_rready,
    output logic [ 31:0] s_rdata,
    output logic [  1:0] s_rresp,
    // AXI4 master (memory): one request channel each for reads and writes;
    // the DRAM model accepts at most one request per cycle (m_arready and
    // m_awready both mean "a slot is free this cycle").
    output logic         m_arvalid,
    input  logic         m_arready,
    output logic [ 31:0] m_araddr,
    output logic [  7:0] m_arlen,
    output logic [  1:0] m_arid,      // 0 fetch, 1 LOAD
    input  logic         m_rvalid,
    input  logic [  1:0] m_rid,
    input  logic [511:0] m_rdata,
    input  logic         m_rlast,
    output logic         m_awvalid,
    input  logic         m_awready,
    output logic [ 31:0] m_awaddr,
    output logic [  7:0] m_awlen,
    input  logic         m_wready,     // the DRAM model moves a write beat this cycle
    output logic         m_wvalid,
    output logic [511:0] m_wdata,
    output logic [ 63:0] m_wstrb,
    output logic         m_wlast,
    // Per-instruction trace (docs/DESIGN.md §5): starts this cycle, and finishes
    // next cycle (asserted in the cycle before the recorded finish).
    output logic [  3:0] tr_start,     // load, compute, store, finish
    output logic [127:0] tr_start_pc,  // 32 bits each, same order
    output logic [  5:0] tr_fin,       // load, store, ldw, matmul, ppu, compute sync
    output logic [191:0] tr_fin_pc,
    output logic         running,
    output logic [  1:0] stage_overflow  // load, store: the harness reports it
);
  localparam int RW = 16;  // buffer row index width
  localparam int WB = W * 8;
  localparam int SPW = SPAD_ROWS > 1 ? $clog2(SPAD_ROWS) : 1;  // used row-index bits (rows are range-checked)
  localparam int ACW = ACC_ROWS > 1 ? $clog2(ACC_ROWS) : 1;

  logic rst;
  assign rst = !rst_n || !running;

  // ---------------------------------------------------------------- registers
  logic [31:0] prog_addr, prog_len, win_base, win_limit;
  logic [1:0] status;
  logic [3:0] error_code;
  logic [31:0] error_pc;
  logic [31:0] error_info;  // IndexOutOfRange: the bad id's position in its load
  logic [63:0] counters[`SYS_CNT_COUNT];
  logic start_pulse;  // the CTRL.start write: run cycle 0 is the next one
  assign running = (status == 2'(`SYS_STATUS_RUNNING));

  // A write is accepted when address and data are both valid and no response
  // is pending; a read when no read data is pending.
  logic wr_fire, rd_fire;
  assign s_awready = s_awvalid && s_wvalid && !s_bvalid;
  assign s_wready  = s_awready;
  assign wr_fire   = s_awready;
  assign s_arready = !s_rvalid;
  assign rd_fire   = s_arvalid && s_arready;
  assign start_pulse = wr_fire && s_awaddr == 12'(`SYS_REG_CTRL) && s_wdata[0] && !running;

  logic [1:0] wr_resp;
  always_comb begin
    if (s_awaddr == 12'(`SYS_REG_CTRL) || s_awaddr == 12'(`SYS_REG_PROG_ADDR) ||
        s_awaddr == 12'(`SYS_REG_PROG_LEN) || s_awaddr == 12'(`SYS_REG_WIN_BASE) ||
        s_awaddr == 12'(`SYS_REG_WIN_LIMIT))
      wr_resp = 2'b00;
    else if (s_awaddr == 12'(`SYS_REG_STATUS) || s_awaddr == 12'(`SYS_REG_ERROR_CODE) ||
             s_awaddr == 12'(`SYS_REG_ERROR_PC) || s_awaddr == 12'(`SYS_REG_ERROR_INFO) ||
             s_awaddr == 12'(`SYS_REG_FINGERPRINT_LO) ||
             s_awaddr == 12'(`SYS_REG_FINGERPRINT_HI) || (s_awaddr >= 12'(`SYS_REG_COUNTERS) &&
             s_awaddr < 12'(`SYS_REG_COUNTERS + 8 * `SYS_CNT_COUNT)))
      wr_resp = 2'b10;  // SLVERR: read-only
    else
      wr_resp = 2'b11;  // DECERR: no register
  end

  logic [31:0] rd_value;
  logic [1:0] rd_resp;
  logic [11:0] cnt_off;
  assign cnt_off = s_araddr - 12'(`SYS_REG_COUNTERS);
  always_comb begin
    rd_value = 32'd0;
    rd_resp  = 2'b00;
    case (s_araddr)
      12'(`SYS_REG_CTRL): rd_value = 32'd0;
      12'(`SYS_REG_STATUS): rd_value = {30'd0, status};
      12'(`SYS_REG_ERROR_CODE): rd_value = {28'd0, error_code};
      12'(`SYS_REG_ERROR_INFO): rd_value = error_info;
      12'(`SYS_REG_ERROR_PC): rd_value = error_pc;
      12'(`SYS_REG_PROG_ADDR): rd_value = prog_addr;
      12'(`SYS_REG_PROG_LEN): rd_value = prog_len;
      12'(`SYS_REG_WIN_BASE): rd_value = win_base;
      12'(`SYS_REG_WIN_LIMIT): rd_value = win_limit;
      12'(`SYS_REG_FINGERPRINT_LO): rd_value = FINGERPRINT[31:0];
      12'(`SYS_REG_FINGERPRINT_HI): rd_value = FINGERPRINT[63:32];
      default: begin
        if (s_araddr >= 12'(`SYS_REG_COUNTERS) && s_araddr < 12'(`SYS_REG_COUNTERS + 8 * `SYS_CNT_COUNT) &&
            s_araddr[1:0] == 2'b00) begin
          rd_value = cnt_off[2] ? counters[cnt_off[7:3]][63:32] : counters[cnt_off[7:3]][31:0];
        end else begin
          rd_resp = 2'b11;
        end
      end
    endcase
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      s_bvalid <= 1'b0;
      s_rvalid <= 1'b0;
      s_bresp  <= 2'b00;
      s_rresp  <= 2'b00;
      s_rdata  <= 32'd0;
      prog_addr <= 32'd0;
      prog_len <= 32'd0;
      win_base <= 32'd0;
      win_limit <= 32'd0;
    end else begin
      if (s_bvalid && s_bready) s_bvalid <= 1'b0;
      if (s_rvalid && s_rready) s_rvalid <= 1'b0;
      if (wr_fire) begin
        s_bvalid <= 1'b1;
        s_bresp  <= wr_resp;
        case (s_awaddr)
          12'(`SYS_REG_PROG_ADDR): prog_addr <= s_wdata;
          12'(`SYS_REG_PROG_LEN): prog_len <= s_wdata;
          12'(`SYS_REG_WIN_BASE): win_base <= s_wdata;
          12'(`SYS_REG_WIN_LIMIT): win_limit <= s_wdata;
          default: ;
        endcase
      end
      if (rd_fire) begin
        s_rvalid <= 1'b1;
        s_rdata  <= rd_value;
        s_rresp  <= rd_resp;
      end
    end
  end

  // ------------------------------------------------------------------ buffers
  logic [COLS*8-1:0] spad[SPAD_ROWS];
  logic [COLS*32-1:0] acc[ACC_ROWS];

  // ------------------------------------------------------------------- fetch
  // The fetch buffer: FETCH_BUFFER entries in a ring; `fb_head` is the next
  // to dispatch, `fb_tail` the next to allocate (received or in flight).
  localparam int FB = `SYS_FETCH_BUFFER;
  localparam int FBW = $clog2(FB);
  logic [255:0] fbuf[FB];
  logic [FB-1:0] fb_avail;
  logic [FBW:0] fb_head, fb_tail;  // one extra bit: full vs empty
  logic [31:0] fetch_next;  // next instruction index to request
  logic [31:0] dispatched;  // instructions dispatched (= index of the head)

  // Fetch blocks in flight, in request order (the DRAM serves in order).
  logic [31:0] fq_addr[FB];
  logic [FBW-1:0] fq_slot[FB];
  logic [2:0] fq_len[FB];
  logic [FBW:0] fq_head, fq_tail;
  logic [8:0] fq_beat;  // beats of the oldest block received so far

  // A beat holds NP parts of PB bytes, each inside one instruction.
  localparam int PB = W > 32 ? 32 : W;
  localparam int NP = W / PB;
  logic [NP-1:0] part_hit;
  logic [FBW-1:0] part_slot[NP];
  logic [4:0] part_byte[NP];
  logic [31:0] fq_cur_addr, fq_beat_addr;
  assign fq_cur_addr = fq_addr[fq_head[FBW-1:0]];
  assign fq_beat_addr = (fq_cur_addr / W + 32'(fq_beat)) * W;
  for (genvar p = 0; p < NP; p++) begin : g_part
    logic [31:0] pa, off;
    assign pa = fq_beat_addr + 32'(p * PB);
    assign off = pa - fq_cur_addr;
    assign part_hit[p] = pa >= fq_cur_addr && off < 32'(fq_len[fq_head[FBW-1:0]]) * 32;
    assign part_slot[p] = fq_slot[fq_head[FBW-1:0]] + FBW'(off / 32);
    assign part_byte[p] = off[4:0];
  end
  logic [31:0] blk_first, blk_len, blk_addr, blk_bytes;
  logic [31:0] blk_beat0, blk_beats;
  logic fetch_wants;
  assign blk_first = prog_addr / 32 + fetch_next;
  always_comb begin
    blk_len = 32'(`SYS_FETCH_BLOCK) - (blk_first % 32'(`SYS_FETCH_BLOCK));
    if (prog_len - fetch_next < blk_len) blk_len = prog_len - fetch_next;
  end
  assign blk_addr = prog_addr + fetch_next * 32;
  assign blk_bytes = blk_len * 32;
  assign blk_beat0 = blk_addr / W;
  assign blk_beats = (blk_addr + blk_bytes - 1) / W - blk_beat0 + 1;
  logic [FBW:0] fb_used;  // entries received or in flight
  assign fb_used = fb_tail - fb_head;
  assign fetch_wants = fetch_next < prog_len && 32'(fb_used) + blk_len <= 32'(FB);

  // ---------------------------------------------------------------- arbiter
  logic ld_req, st_req, ld_grant, st_grant, fe_grant, any_grant;
  logic [31:0] ld_addr, st_addr;
  logic [8:0] ld_beats, st_beats;
  logic [1:0] rr_next, winner;
  logic [2:0] ready;
  logic halt;  // a fault is raised this cycle: nothing else may happen
  logic tok_fault;
  assign ready = {st_req, ld_req, fetch_wants};
  always_comb begin
    winner = 2'd0;
    if (ready[rr_next]) winner = rr_next;
    else if (ready[(rr_next + 2'd1) % 3]) winner = (rr_next + 2'd1) % 3;
    else winner = (rr_next + 2'd2) % 3;
  end
  // The request on the bus; the DRAM model accepts it when a slot is free.
  // Phase 0 faults (token overflow; a bad program at cycle 0) come before
  // the arbiter: no request is granted in their cycle.
  logic pre_fault;
  assign m_arvalid = running && !pre_fault && ready != 3'b000 && winner != 2'd2;
  assign m_awvalid = running && !pre_fault && ready != 3'b000 && winner == 2'd2;
  assign m_araddr = winner == 2'd0 ? blk_beat0 * W : ld_addr;
  assign m_arlen = winner == 2'd0 ? 8'(blk_beats - 1) : 8'(ld_beats - 9'd1);
  assign m_arid = winner;
  assign m_awaddr = st_addr;
  assign m_awlen = 8'(st_beats - 9'd1);
  assign any_grant = (m_arvalid && m_arready) || (m_awvalid && m_awready);
  assign fe_grant = any_grant && winner == 2'd0;
  assign ld_grant = any_grant && winner == 2'd1;
  assign st_grant = any_grant && winner == 2'd2;

  // Requests holding a DRAM slot: from the grant through the last beat.
  logic [7:0] outstanding;
  logic fe_beat, ld_beat, wr_last_beat;
  assign fe_beat = m_rvalid && m_rid == 2'd0;
  assign ld_beat = m_rvalid && m_rid == 2'd1;

  // ------------------------------------------------------------ dispatch
  logic [255:0] head_instr;
  logic head_avail;
  logic [2:0] chk_code;
  logic chk_finish;
  logic [1:0] chk_queue;
  logic [16:0] chk_mm_in_end;
  assign head_instr = fbuf[fb_head[FBW-1:0]];
  assign head_avail = fb_head != fb_tail && fb_avail[fb_head[FBW-1:0]];

  check #(.ROWS(ROWS), .COLS(COLS), .SPAD_ROWS(SPAD_ROWS), .ACC_ROWS(ACC_ROWS), .INT4(INT4), .SPARSE(SPARSE)) u_check (
      .instr(head_instr),
      .win_base(win_base),
      .win_limit(win_limit),
      .code(chk_code),
      .is_finish(chk_finish),
      .queue(chk_queue),
      .mm_in_end(chk_mm_in_end)
  );

  // The queues: QUEUE_DEPTH entries each of {pc, instruction}.
  localparam int QD = `SYS_QUEUE_DEPTH;
  localparam int QDW = $clog2(QD);
  logic [255:0] q_instr[4*QD];  // queue q, slot i at {q, i} (QD is a power of two)
  logic [31:0] q_pc[4*QD];
  logic [16:0] q_mm_in_end[QD];  // COMPUTE queue: a matmul's predecoded input span end
  logic [QDW:0] q_head[3], q_tail[3];
  logic [2:0] q_empty, q_full, q_pop;
  logic [QDW:0] q_tail_sel;  // tail of the queue the head dispatches to
  logic head_q_full;
  for (genvar q = 0; q < 3; q++) begin : g_qstat
    assign q_empty[q] = q_head[q] == q_tail[q];
    assign q_full[q]  = (q_tail[q] - q_head[q]) == (QDW + 1)'(QD);
  end

  logic all_idle;  // every queue empty, every unit idle, no memory request
  logic ld_idle, st_idle, cp_idle;
  assign all_idle = q_empty == 3'b111 && ld_idle && st_idle && cp_idle && outstanding == 8'd0;

  logic bad_program;
  logic [37:0] prog_end;
  assign prog_end = {6'd0, prog_addr} + {1'b0, prog_len, 5'd0};
  assign bad_program = {32'd0, win_limit} > MEM_BYTES || win_base > win_limit || prog_addr[4:0] != 5'd0 ||
      prog_len == 32'd0 || prog_addr < win_base || prog_end > {6'd0, win_limit};
  logic [31:0] run_cycle;

  logic disp_fault, disp_move, disp_finish, overrun;
  assign overrun = fb_head == fb_tail && dispatched == prog_len && fetch_next == prog_len;
  assign disp_fault = head_avail && chk_code != 3'd0;
  assign disp_finish = head_avail && chk_code == 3'd0 && chk_finish && all_idle;
  assign q_tail_sel = chk_queue == 2'd0 ? q_tail[0] : chk_queue == 2'd1 ? q_tail[1] : q_tail[2];
  assign head_q_full = chk_queue == 2'd0 ? q_full[0] : chk_queue == 2'd1 ? q_full[1] : q_full[2];
  assign disp_move = head_avail && chk_code == 3'd0 && !chk_finish && !head_q_full;

  // ---------------------------------------------------------------- tokens
  // Counters: 0 LOAD->COMPUTE, 1 COMPUTE->LOAD, 2 COMPUTE->STORE, 3 STORE->COMPUTE.
  logic [7:0] tok[4];
  logic [2:0] pend[4];  // pushes taking effect this cycle
  logic [8:0] tok_now[4];
  logic [3:0] tok_over;
  for (genvar k = 0; k < 4; k++) begin : g_tok
    assign tok_now[k]  = {1'b0, tok[k]} + {6'd0, pend[k]};
    assign tok_over[k] = tok_now[k] > 9'(`SYS_TOKEN_MAX);
  end
  assign tok_fault = running && tok_over != 4'd0;
  // An indexed load's bad id (or, with ld_fault_stream, a compressed
  // load's bad record) faults before everything else of its cycle.
  logic ld_idx_fault, ld_fault_stream;
  logic [31:0] ld_idx_pc, ld_idx_pos;
  assign pre_fault = ld_idx_fault || tok_fault || (run_cycle == 32'd0 && bad_program);

  // Unit pushes (asserted the cycle before they take effect).
  logic ld_push_next, st_push_prev;
  logic [1:0] cp_push_prev_n;
  logic [2:0] cp_push_next_n;

  // Watchdog.
  logic [12:0] idle_cycles;
  logic active, wd_fault;

  // Fault raised this cycle (the first in phase order wins).
  logic [3:0] fault_code;
  logic [31:0] fault_pc;
  logic [31:0] ld_fin_pc, st_fin_pc, arr_fin_pc, mm_fin_pc, ppu_fin_pc, csync_fin_pc;
  logic ld_fin, st_fin, arr_fin, mm_fin, ppu_fin, csync_fin;
  logic [31:0] pend_pc;  // an instruction whose push lands next cycle (for ERROR_PC)
  logic [31:0] pend_pc_q;  // ... and whose push lands this cycle
  always_comb begin
    fault_code = 4'd0;
    fault_pc = 32'd0;
    if (ld_idx_fault) begin
      fault_code = ld_fault_stream ? 4'(`SYS_ERR_BAD_STREAM) : 4'(`SYS_ERR_INDEX_OUT_OF_RANGE);
      fault_pc = ld_idx_pc;
    end else if (run_cycle == 32'd0 && bad_program) begin
      fault_code = 4'(`SYS_ERR_BAD_PROGRAM);
    end else if (tok_fault) begin
      fault_code = 4'(`SYS_ERR_TOKEN_OVERFLOW);
      fault_pc = pend_pc_q;
    end else if (disp_fault) begin
      fault_code = {1'b0, chk_code};
      fault_pc = dispatched;
    end else if (!head_avail && overrun) begin
      fault_code = 4'(`SYS_ERR_PROGRAM_OVERRUN);
      fault_pc = prog_len;
    end else if (wd_fault) begin
      fault_code = 4'(`SYS_ERR_DEADLOCK);
      fault_pc = !q_empty[1] ? q_pc[{2'd1, q_head[1][QDW-1:0]}] :
                 !q_empty[0] ? q_pc[{2'd0, q_head[0][QDW-1:0]}] :
                 !q_empty[2] ? q_pc[{2'd2, q_head[2][QDW-1:0]}] : dispatched;
    end
  end
  assign halt = running && fault_code != 4'd0;
  // The faults that can stop a start: every one but the watchdog's. In a
  // cycle the watchdog fires, nothing can start anyway (ISA.md §4: 4095
  // idle cycles leave queues, tokens and units as they were in the cycle
  // before, which started nothing), and leaving it out keeps the starts --
  // and behind them the whole COMPUTE datapath -- independent of the
  // memory handshake inputs (the watchdog sees `any_grant`), so Verilator
  // need not settle that logic again whenever an input changes.
  logic halt_start;
  assign halt_start = running && (ld_idx_fault || (run_cycle == 32'd0 && bad_program) || tok_fault || disp_fault ||
                                  (!head_avail && overrun));

  // ------------------------------------------------------------------ units
  logic [2:0] tok_ok;
  logic ld_start, st_start, cp_start;
  logic [255:0] hd_instr[3];
  logic [31:0] hd_pc[3];
  for (genvar q = 0; q < 3; q++) begin : g_head
    assign hd_instr[q] = q_instr[{2'(q), q_head[q][QDW-1:0]}];
    assign hd_pc[q] = q_pc[{2'(q), q_head[q][QDW-1:0]}];
  end
  // A head pops: LOAD pop_next <- COMPUTE->LOAD (1); COMPUTE pop_prev <- 0,
  // pop_next <- 3; STORE pop_prev <- COMPUTE->STORE (2).
  assign tok_ok[0] = !halt_start && (!hd_instr[0][`SYS_DEP_POP_NEXT] || tok_now[1] != 9'd0);
  assign tok_ok[1] = !halt_start && (!hd_instr[1][`SYS_DEP_POP_PREV] || tok_now[0] != 9'd0) &&
      (!hd_instr[1][`SYS_DEP_POP_NEXT] || tok_now[3] != 9'd0);
  assign tok_ok[2] = !halt_start && (!hd_instr[2][`SYS_DEP_POP_PREV] || tok_now[2] != 9'd0);
  assign q_pop = {st_start, cp_start, ld_start};

  // Buffer ports.
  logic ld_sp_we, ld_ac_we;
  logic [RW-1:0] ld_sp_row, ld_ac_row;
  logic [COLS*8-1:0] ld_sp_data;
  logic [COLS*32-1:0] ld_ac_data;
  logic [COLS-1:0] ld_sp_be, ld_ac_be;
  logic [RW-1:0] st_sp_row, st_ac_row;
  logic [RW-1:0] cp_sp_row_x, cp_sp_row_w, cp_sp_row_a, cp_sp_row_b, cp_sp_wrow;
  logic cp_sp_we, cp_ac_we;
  logic [COLS*8-1:0] cp_sp_wdata;
  logic [RW-1:0] cp_ac_row_mm, cp_ac_row_pp, cp_ac_wrow;
  logic [COLS*32-1:0] cp_ac_wdata;
  // The vector unit's ports (inside compute).
  logic [RW-1:0] vu_ac_row_a, vu_ac_row_b, vu_sp_row, vu_ac_wrow, vu_sp_wrow;
  logic vu_ac_we, vu_sp_we;
  logic [COLS*32-1:0] vu_ac_wdata;
  logic [COLS*8-1:0] vu_sp_wdata;
  logic [COLS-1:0] vu_ac_be, vu_sp_be;
  logic [39:0] vc_busy, vc_lane;
  logic [31:0] vc_elems, vc_acc_rd, vc_acc_wr, vc_sp_rd, vc_sp_wr;
  logic [WB-1:0] st_wdata;
  logic [W-1:0] st_wstrb;
  logic st_wlast;

  // Counter increments.
  logic ld_c_busy, ld_c_stall, ld_c_spad_wr, ld_c_acc_wr;
  logic st_c_busy, st_c_stall, st_c_spad_rd, st_c_acc_rd;
  logic cp_c_busy, cp_c_stall, cp_c_array_busy, cp_c_ppu_busy, cp_c_weight_rows, cp_c_spad_wr, cp_c_acc_wr;
  logic [31:0] cp_c_macs;
  logic [2:0] cp_c_spad_rd;
  logic [1:0] cp_c_acc_rd;
  logic [15:0] cp_c_ppu_elems;
  logic ld_ovf, st_ovf;

  dma_load #(
      .COLS(COLS), .W(W), .SPAD_ROWS(SPAD_ROWS), .ACC_ROWS(ACC_ROWS), .STAGE_BYTES(LOAD_STAGE_BYTES),
      .IDS(LOAD_IDS)
  ) u_load (
      .clk(clk), .rst(rst),
      .head_valid(!q_empty[0]), .head_instr(hd_instr[0]), .head_pc(hd_pc[0]), .tok_ok(tok_ok[0]),
      .start(ld_start), .push_next(ld_push_next),
      .req_valid(ld_req), .req_addr(ld_addr), .req_beats(ld_beats), .req_grant(ld_grant),
      .rd_valid(ld_beat), .rd_data(m_rdata[WB-1:0]),
      .sp_we(ld_sp_we), .sp_row(ld_sp_row), .sp_data(ld_sp_data), .sp_be(ld_sp_be),
      .ac_we(ld_ac_we), .ac_row(ld_ac_row), .ac_data(ld_ac_data), .ac_be(ld_ac_be),
      .fin_valid(ld_fin), .fin_pc(ld_fin_pc), .idle(ld_idle),
      .c_busy(ld_c_busy), .c_stall(ld_c_stall), .c_spad_wr(ld_c_spad_wr), .c_acc_wr(ld_c_acc_wr),
      .stage_overflow(ld_ovf),
      .idx_fault(ld_idx_fault), .fault_stream(ld_fault_stream), .idx_fault_pc(ld_idx_pc),
      .idx_fault_pos(ld_idx_pos)
  );

  dma_store #(
      .COLS(COLS), .W(W), .SPAD_ROWS(SPAD_ROWS), .ACC_ROWS(ACC_ROWS), .STAGE_BYTES(STORE_STAGE_BYTES)
  ) u_store (
      .clk(clk), .rst(rst),
      .head_valid(!q_empty[2]), .head_instr(hd_instr[2]), .head_pc(hd_pc[2]), .tok_ok(tok_ok[2]),
      .start(st_start), .push_prev(st_push_prev),
      .req_valid(st_req), .req_addr(st_addr), .req_beats(st_beats), .req_grant(st_grant),
      .wr_ready(m_wready && running), .wr_data(st_wdata), .wr_strb(st_wstrb), .wr_last(st_wlast),
      .sp_row(st_sp_row), .sp_q(spad[st_sp_row[SPW-1:0]]), .ac_row(st_ac_row), .ac_q(acc[st_ac_row[ACW-1:0]]),
      .fin_valid(st_fin), .fin_pc(st_fin_pc), .idle(st_idle),
      .c_busy(st_c_busy), .c_stall(st_c_stall), .c_spad_rd(st_c_spad_rd), .c_acc_rd(st_c_acc_rd),
      .stage_overflow(st_ovf)
  );

  // 2:4 (SPARSE): the COMPUTE unit's two more scratchpad read ports (a
  // 2:4 input's second row, a tile's position row); none without it.
  logic [RW-1:0] cp_sp_row_x2, cp_sp_row_m;
  logic [COLS*8-1:0] cp_sp_q_x2, cp_sp_q_m;
  assign cp_sp_q_x2 = (SPARSE != 0) ? spad[cp_sp_row_x2[SPW-1:0]] : '0;
  assign cp_sp_q_m  = (SPARSE != 0) ? spad[cp_sp_row_m[SPW-1:0]] : '0;
  compute #(.ROWS(ROWS), .COLS(COLS), .SPAD_ROWS(SPAD_ROWS), .ACC_ROWS(ACC_ROWS), .INT4(INT4), .SPARSE(SPARSE)) u_compute (
      .clk(clk), .rst(rst),
      .head_valid(!q_empty[1]), .head_instr(hd_instr[1]), .head_pc(hd_pc[1]), .tok_ok(tok_ok[1]),
      .head_mm_in_end(q_mm_in_end[q_head[1][QDW-1:0]]),
      .start(cp_start), .push_prev_n(cp_push_prev_n), .push_next_n(cp_push_next_n),
      .sp_row_x(cp_sp_row_x), .sp_q_x(spad[cp_sp_row_x[SPW-1:0]]),
      .sp_row_w(cp_sp_row_w), .sp_q_w(spad[cp_sp_row_w[SPW-1:0]]),
      .sp_row_a(cp_sp_row_a), .sp_q_a(spad[cp_sp_row_a[SPW-1:0]]),
      .sp_row_b(cp_sp_row_b), .sp_q_b(spad[cp_sp_row_b[SPW-1:0]]),
      .sp_row_x2(cp_sp_row_x2), .sp_q_x2(cp_sp_q_x2), .sp_row_m(cp_sp_row_m), .sp_q_m(cp_sp_q_m),
      .sp_we(cp_sp_we), .sp_wrow(cp_sp_wrow), .sp_wdata(cp_sp_wdata),
      .ac_row_mm(cp_ac_row_mm), .ac_q_mm(acc[cp_ac_row_mm[ACW-1:0]]),
      .ac_row_pp(cp_ac_row_pp), .ac_q_pp(acc[cp_ac_row_pp[ACW-1:0]]),
      .ac_we(cp_ac_we), .ac_wrow(cp_ac_wrow), .ac_wdata(cp_ac_wdata),
      .vu_ac_row_a(vu_ac_row_a), .vu_ac_q_a(acc[vu_ac_row_a[ACW-1:0]]),
      .vu_ac_row_b(vu_ac_row_b), .vu_ac_q_b(acc[vu_ac_row_b[ACW-1:0]]),
      .vu_sp_row(vu_sp_row), .vu_sp_q(spad[vu_sp_row[SPW-1:0]]),
      .vu_ac_we(vu_ac_we), .vu_ac_wrow(vu_ac_wrow), .vu_ac_wdata(vu_ac_wdata), .vu_ac_be(vu_ac_be),
      .vu_sp_we(vu_sp_we), .vu_sp_wrow(vu_sp_wrow), .vu_sp_wdata(vu_sp_wdata), .vu_sp_be(vu_sp_be),
      .fin_arr_valid(arr_fin), .fin_arr_pc(arr_fin_pc),
      .fin_mm_valid(mm_fin), .fin_mm_pc(mm_fin_pc),
      .fin_ppu_valid(ppu_fin), .fin_ppu_pc(ppu_fin_pc),
      .fin_sync_valid(csync_fin), .fin_sync_pc(csync_fin_pc),
      .idle(cp_idle),
      .c_busy(cp_c_busy), .c_stall(cp_c_stall), .c_array_busy(cp_c_array_busy), .c_ppu_busy(cp_c_ppu_busy),
      .c_macs(cp_c_macs), .c_weight_rows(cp_c_weight_rows), .c_spad_rd(cp_c_spad_rd),
      .c_spad_wr(cp_c_spad_wr), .c_acc_rd(cp_c_acc_rd), .c_acc_wr(cp_c_acc_wr), .c_ppu_elems(cp_c_ppu_elems),
      .vc_busy(vc_busy), .vc_elems(vc_elems), .vc_lane(vc_lane), .vc_acc_rd(vc_acc_rd), .vc_acc_wr(vc_acc_wr),
      .vc_sp_rd(vc_sp_rd), .vc_sp_wr(vc_sp_wr)
  );

  // Buffer writes: the LOAD's chunk (byte / element enables), then the
  // COMPUTE unit's rows (programs never race them, ISA.md §3 "Hazards").
  always_ff @(posedge clk) begin
    if (running) begin
      if (ld_sp_we) begin
        for (int c = 0; c < COLS; c++) begin
          if (ld_sp_be[c]) spad[ld_sp_row[SPW-1:0]][8*c+:8] <= ld_sp_data[8*c+:8];
        end
      end
      if (cp_sp_we) spad[cp_sp_wrow[SPW-1:0]] <= cp_sp_wdata;
      if (vu_sp_we) begin
        for (int c = 0; c < COLS; c++) begin
          if (vu_sp_be[c]) spad[vu_sp_wrow[SPW-1:0]][8*c+:8] <= vu_sp_wdata[8*c+:8];
        end
      end
      if (ld_ac_we) begin
        for (int c = 0; c < COLS; c++) begin
          if (ld_ac_be[c]) acc[ld_ac_row[ACW-1:0]][32*c+:32] <= ld_ac_data[32*c+:32];
        end
      end
      if (cp_ac_we) acc[cp_ac_wrow[ACW-1:0]] <= cp_ac_wdata;
      if (vu_ac_we) begin
        for (int c = 0; c < COLS; c++) begin
          if (vu_ac_be[c]) acc[vu_ac_wrow[ACW-1:0]][32*c+:32] <= vu_ac_wdata[32*c+:32];
        end
      end
    end
  end

  // Write data channel (only the STORE unit writes).
  assign m_wvalid = running && st_wstrb != '0;
  assign m_wdata = {{(512 - WB) {1'b0}}, st_wdata};
  assign m_wstrb = {{(64 - W) {1'b0}}, st_wstrb};
  assign m_wlast = st_wlast;
  assign wr_last_beat = m_wready && running && st_wlast;

  // ------------------------------------------------------------- run state
  assign pend_pc = ld_fin ? ld_fin_pc : st_fin ? st_fin_pc : csync_fin ? csync_fin_pc :
                   ppu_fin ? ppu_fin_pc : arr_fin ? arr_fin_pc : mm_fin_pc;
  // Watchdog: a cycle is active if anything is granted, dispatched or
  // started, a unit has an unfinished instruction, or a request holds a slot.
  // The fault itself ignores starts (in a cycle the watchdog can fire,
  // nothing can start, ISA.md §4), which keeps starts -> halt acyclic.
  logic busy_any;
  assign busy_any = any_grant || disp_move || disp_finish || !ld_idle || !st_idle || !cp_idle || outstanding != 8'd0;
  assign active = busy_any || ld_start || st_start || cp_start;
  assign wd_fault = !busy_any && idle_cycles == 13'(`SYS_WATCHDOG_CYCLES - 1);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      status <= 2'(`SYS_STATUS_IDLE);
      error_code <= 4'd0;
      error_pc <= 32'd0;
      error_info <= 32'd0;
      for (int i = 0; i < `SYS_CNT_COUNT; i++) counters[i] <= 64'd0;
    end else if (start_pulse) begin
      status <= 2'(`SYS_STATUS_RUNNING);
      error_code <= 4'd0;
      error_pc <= 32'd0;
      error_info <= 32'd0;
      for (int i = 0; i < `SYS_CNT_COUNT; i++) counters[i] <= 64'd0;
    end else if (running) begin
      if (halt) begin
        status <= 2'(`SYS_STATUS_FAULT);
        error_code <= fault_code;
        error_pc <= fault_pc;
        if (ld_idx_fault) error_info <= ld_idx_pos;
      end else if (disp_finish) begin
        status <= 2'(`SYS_STATUS_DONE);
      end
      counters[`SYS_CNT_CYCLES] <= counters[`SYS_CNT_CYCLES] + 64'd1;
      if (!halt) begin
        if (disp_move || disp_finish) counters[`SYS_CNT_INSTRUCTIONS] <= counters[`SYS_CNT_INSTRUCTIONS] + 64'd1;
        counters[`SYS_CNT_LOAD_BUSY] <= counters[`SYS_CNT_LOAD_BUSY] + 64'(ld_c_busy);
        counters[`SYS_CNT_LOAD_STALL] <= counters[`SYS_CNT_LOAD_STALL] + 64'(ld_c_stall);
        counters[`SYS_CNT_STORE_BUSY] <= counters[`SYS_CNT_STORE_BUSY] + 64'(st_c_busy);
        counters[`SYS_CNT_STORE_STALL] <= counters[`SYS_CNT_STORE_STALL] + 64'(st_c_stall);
        counters[`SYS_CNT_COMPUTE_BUSY] <= counters[`SYS_CNT_COMPUTE_BUSY] + 64'(cp_c_busy);
        counters[`SYS_CNT_COMPUTE_STALL] <= counters[`SYS_CNT_COMPUTE_STALL] + 64'(cp_c_stall);
        counters[`SYS_CNT_ARRAY_BUSY] <= counters[`SYS_CNT_ARRAY_BUSY] + 64'(cp_c_array_busy);
        counters[`SYS_CNT_PPU_BUSY] <= counters[`SYS_CNT_PPU_BUSY] + 64'(cp_c_ppu_busy);
        counters[`SYS_CNT_MACS] <= counters[`SYS_CNT_MACS] + 64'(cp_c_macs);
        counters[`SYS_CNT_WEIGHT_ROWS] <= counters[`SYS_CNT_WEIGHT_ROWS] + 64'(cp_c_weight_rows);
        counters[`SYS_CNT_SPAD_READ_ROWS] <= counters[`SYS_CNT_SPAD_READ_ROWS] + 64'(st_c_spad_rd) +
            64'(cp_c_spad_rd) + 64'(vc_sp_rd);
        counters[`SYS_CNT_SPAD_WRITE_ROWS] <= counters[`SYS_CNT_SPAD_WRITE_ROWS] + 64'(ld_c_spad_wr) +
            64'(cp_c_spad_wr) + 64'(vc_sp_wr);
        counters[`SYS_CNT_ACC_READ_ROWS] <= counters[`SYS_CNT_ACC_READ_ROWS] + 64'(st_c_acc_rd) + 64'(cp_c_acc_rd) +
            64'(vc_acc_rd);
        counters[`SYS_CNT_ACC_WRITE_ROWS] <= counters[`SYS_CNT_ACC_WRITE_ROWS] + 64'(ld_c_acc_wr) +
            64'(cp_c_acc_wr) + 64'(vc_acc_wr);
        // The vector unit's, in bulk in its issue cycle (zero otherwise).
        counters[`SYS_CNT_VECTOR_BUSY] <= counters[`SYS_CNT_VECTOR_BUSY] + 64'(vc_busy);
        counters[`SYS_CNT_VECTOR_ELEMENTS] <= counters[`SYS_CNT_VECTOR_ELEMENTS] + 64'(vc_elems);
        counters[`SYS_CNT_VECTOR_LANE_CYCLES] <= counters[`SYS_CNT_VECTOR_LANE_CYCLES] + 64'(vc_lane);
        counters[`SYS_CNT_PPU_ELEMENTS] <= counters[`SYS_CNT_PPU_ELEMENTS] + 64'(cp_c_ppu_elems);
      end
      if (any_grant) begin
        counters[`SYS_CNT_DRAM_REQUESTS] <= counters[`SYS_CNT_DRAM_REQUESTS] + 64'd1;
        if (st_grant)
          counters[`SYS_CNT_DRAM_WRITE_BYTES] <= counters[`SYS_CNT_DRAM_WRITE_BYTES] + 64'(st_beats) * 64'(W);
        else if (ld_grant)
          counters[`SYS_CNT_DRAM_READ_BYTES] <= counters[`SYS_CNT_DRAM_READ_BYTES] + 64'(ld_beats) * 64'(W);
        else
          counters[`SYS_CNT_DRAM_READ_BYTES] <= counters[`SYS_CNT_DRAM_READ_BYTES] + 64'(blk_beats) * 64'(W);
      end
    end
  end

  // Run-cycle state (reset while not running).
  always_ff @(posedge clk) begin
    if (rst) begin
      run_cycle <= 32'd0;
      fetch_next <= 32'd0;
      dispatched <= 32'd0;
      fb_head <= '0;
      fb_tail <= '0;
      fb_avail <= '0;
      fq_head <= '0;
      fq_tail <= '0;
      fq_beat <= 9'd0;
      rr_next <= 2'd0;
      outstanding <= 8'd0;
      idle_cycles <= 13'd0;
      for (int k = 0; k < 4; k++) begin
        tok[k]  <= 8'd0;
        pend[k] <= 3'd0;
      end
      for (int q = 0; q < 3; q++) begin
        q_head[q] <= '0;
        q_tail[q] <= '0;
      end
      pend_pc_q <= 32'd0;
    end else begin
      run_cycle <= run_cycle + 32'd1;
      // Phase 0 then 3: tokens take this cycle's pushes and the starts' pops.
      tok[0] <= 8'(tok_now[0] - 9'(cp_start && hd_instr[1][`SYS_DEP_POP_PREV]));
      tok[1] <= 8'(tok_now[1] - 9'(ld_start && hd_instr[0][`SYS_DEP_POP_NEXT]));
      tok[2] <= 8'(tok_now[2] - 9'(st_start && hd_instr[2][`SYS_DEP_POP_PREV]));
      tok[3] <= 8'(tok_now[3] - 9'(cp_start && hd_instr[1][`SYS_DEP_POP_NEXT]));
      pend[0] <= 3'(ld_push_next);
      pend[1] <= 3'(cp_push_prev_n);
      pend[2] <= cp_push_next_n;
      pend[3] <= 3'(st_push_prev);
      pend_pc_q <= pend_pc;
      // Phase 1: the grant.
      rr_next <= any_grant ? (winner + 2'd1) % 3 : rr_next;
      outstanding <= outstanding + 8'(any_grant) - 8'(m_rvalid && m_rlast) - 8'(wr_last_beat);
      if (fe_grant) begin
        fq_addr[fq_tail[FBW-1:0]] <= blk_addr;
        fq_slot[fq_tail[FBW-1:0]] <= fb_tail[FBW-1:0];
        fq_len[fq_tail[FBW-1:0]] <= 3'(blk_len);
        fq_tail <= fq_tail + 1'b1;
        fb_tail <= fb_tail + (FBW + 1)'(blk_len);
        fetch_next <= fetch_next + blk_len;
      end
      // Fetch data: place each beat's bytes into the entries of the oldest
      // block in flight; an entry is available once its last byte is in.
      if (fe_beat) begin
        for (int p = 0; p < NP; p++) begin
          if (part_hit[p]) begin
            fbuf[part_slot[p]][{part_byte[p], 3'b000}+:8*PB] <= m_rdata[8*p*PB+:8*PB];
            if ({27'd0, part_byte[p]} + 32'(PB) == 32'd32) fb_avail[part_slot[p]] <= 1'b1;
          end
        end
        if (m_rlast) begin
          fq_head <= fq_head + 1'b1;
          fq_beat <= 9'd0;
        end else begin
          fq_beat <= fq_beat + 9'd1;
        end
      end
      // Phase 2: dispatch.
      if (!halt && (disp_move || disp_finish)) begin
        fb_avail[fb_head[FBW-1:0]] <= 1'b0;
        fb_head <= fb_head + 1'b1;
        dispatched <= dispatched + 32'd1;
      end
      if (!halt && disp_move) begin
        q_instr[{chk_queue, q_tail_sel[QDW-1:0]}] <= head_instr;
        q_pc[{chk_queue, q_tail_sel[QDW-1:0]}] <= dispatched;
        if (chk_queue == 2'(`SYS_QUEUE_COMPUTE)) q_mm_in_end[q_tail_sel[QDW-1:0]] <= chk_mm_in_end;
        q_tail[chk_queue] <= q_tail[chk_queue] + 1'b1;
      end
      // Phase 3: starts leave their queues.
      for (int q = 0; q < 3; q++) begin
        if (q_pop[q]) q_head[q] <= q_head[q] + 1'b1;
      end
      idle_cycles <= active ? 13'd0 : idle_cycles + 13'd1;
    end
  end

  // ------------------------------------------------------------------ trace
  assign tr_start = running && !halt ? {disp_finish, st_start, cp_start, ld_start} : 4'd0;
  assign tr_start_pc = {dispatched, hd_pc[2], hd_pc[1], hd_pc[0]};
  assign tr_fin = running && !halt ? {csync_fin, ppu_fin, mm_fin, arr_fin, st_fin, ld_fin} : 6'd0;
  assign tr_fin_pc = {csync_fin_pc, ppu_fin_pc, mm_fin_pc, arr_fin_pc, st_fin_pc, ld_fin_pc};
  assign stage_overflow = {st_ovf, ld_ovf};

  logic unused;
  assign unused = ^{m_rdata[511:WB], cnt_off, q_tail_sel, ld_sp_row, ld_ac_row,
                    st_sp_row, st_ac_row, cp_sp_row_x, cp_sp_row_w, cp_sp_row_a, cp_sp_row_b, cp_sp_wrow,
                    cp_ac_row_mm, cp_ac_row_pp, cp_ac_wrow, cp_sp_row_x2, cp_sp_row_m, vu_ac_row_a, vu_ac_row_b,
                    vu_sp_row, vu_ac_wrow, vu_sp_wrow};
endmodule
