#pragma once
/// \file
/// A compiled form of libtraceevent's print formats, for the events whose
/// format is plain: `tracecmd_buffer::info` prints those without going through
/// `tep_print_event`, and every other event through it.
///
/// libtraceevent prints an event's info by walking its pre-parsed print format
/// and, for every conversion, evaluating the argument tree and calling
/// vsnprintf on a growing `trace_seq`. Most events of a large trace have plain
/// formats (`raw_syscalls:sys_enter` is `"NR %ld (%lx, %lx, %lx, %lx, %lx, %lx)"`
/// over `REC->id` and `REC->args[0..5]`), for which that machinery is most of
/// the cost of `trace-cmd report`-style text. `info_program` compiles such a
/// format once per event type into literal text and field reads, and prints
/// it with the same rules libtraceevent applies (libtraceevent 1.7,
/// `event-parse.c`: `parse_args`, `parse_arg_string`, `parse_arg_format`,
/// `print_arg_number`, `print_str_arg`):
///
/// - literal text: `\n`, `\t`, `\r`, `\\` unescaped, any other `\c` is `c`;
///   `%%` is `%`;
/// - `%[#0-9.-]*[hlLzZ]*[diuxXo]` over a field (`REC->f`) or an element of a
///   fixed array with a constant index (`REC->f[2]`): the field read as an
///   unsigned number of its size (the file's byte order), cast to the C type of
///   the length modifiers (`hh` char, `h` short, none int, `l`/`z` long,
///   `ll`/`L` long long) and printed with that conversion;
/// - `%[#0-9.-]*s` over a fixed char array field (bytes up to the first NUL
///   within the field), a `__print_symbolic` of a field whose values are all
///   numbers (the first matching entry's text, else `0x` and the value in
///   hex), or a `__get_str` dynamic string (`__data_loc`, 4 bytes:
///   offset in the low half, length in the high half; nothing is printed when
///   the length is 0 or runs past the record).
///
/// Anything else makes the event use libtraceevent: a plugin handler, a failed,
/// binary-printk or raw-print event, `*` widths, `%p`, `%c` and the `+` flag
/// (which libtraceevent 1.7 does not parse: it prints `>c<` and shifts the
/// arguments; later versions print them), casts,
/// operators other than a constant index, `__print_flags` and every other
/// helper, `__print_symbolic` with a named value, pointer-sized non-array `%s` fields (printk-format lookups),
/// relative or 2-byte `__data_loc` fields. At print time, a record too short
/// for a field it reads, or a dynamic string without a NUL before the record's
/// end, also falls back (libtraceevent prints 0 or reads on there). The
/// differential tests compare both paths on every event of real trace-cmd files
/// and on crafted formats and records.
///
/// Part of the optional `tsync::tracecmd` target (libtraceevent).

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <event-parse.h>

#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::io::detail {

/// One event type's print format, compiled (see the file comment).
class info_program {
 public:
  /// Compile `ev`'s print format. `ok()` is false when the event needs libtraceevent.
  [[nodiscard]] static info_program compile(tep_handle* tep, const tep_event* ev) {
    info_program p;
    p.ok_ = p.build(tep, ev);
    if (!p.ok_) p.pieces_.clear();
    return p;
  }

  [[nodiscard]] bool ok() const noexcept { return ok_; }

  /// Append the info text of a record of this event type to `out`. Returns
  /// false (with `out` unspecified) when this record must go through
  /// libtraceevent (a field beyond the record's end, a dynamic string without NUL).
  [[nodiscard]] bool print(const void* data, int size, std::string& out) const {
    if (!ok_ || data == nullptr || size < 0) return false;
    const auto* bytes = static_cast<const unsigned char*>(data);
    const auto n = static_cast<std::uint32_t>(size);
    for (const piece& x : pieces_) {
      bool done = false;
      switch (x.what) {
        case kind::literal: out += x.text; done = true; break;
        case kind::number: done = print_number(x, bytes, n, out); break;
        case kind::fixed_string: done = print_fixed(x, bytes, n, out); break;
        case kind::dynamic_string: done = print_dynamic(x, bytes, n, out); break;
        case kind::symbol: done = print_symbol(x, bytes, n, out); break;
      }
      if (!done) return false;
    }
    return true;
  }

 private:
  enum class kind : std::uint8_t { literal, number, fixed_string, dynamic_string, symbol };
  struct symbol_entry {
    std::uint64_t value = 0;
    std::string text;
  };
  struct piece {
    kind what = kind::literal;
    std::string text;          // literal text, or the printf conversion spec
    std::uint32_t offset = 0;  // field (or element) offset in the record
    std::uint32_t size = 0;    // bytes read (numbers, __data_loc) or the array's size
    int ls = 0;                // libtraceevent's length count: -2 hh, -1 h, 0, 1 l, 2 ll
    char conv = 'd';           // d i u x X o s
    bool plain = false;        // the spec is exactly %d %u %x with an optional l or ll
    std::vector<symbol_entry> symbols;  // __print_symbolic's table, in its order
  };

  bool ok_ = false;
  bool swap_ = false;  // the file's byte order is not this machine's
  std::vector<piece> pieces_;

  bool build(tep_handle* tep, const tep_event* ev) {
    if (tep == nullptr || ev == nullptr || ev->print_fmt.format == nullptr) return false;
    const auto flags = static_cast<unsigned>(ev->flags);
    const auto flag = [](auto f) { return static_cast<unsigned>(f); };
    if ((ev->handler != nullptr && (flags & flag(TEP_EVENT_FL_NOHANDLE)) == 0) ||
        (flags & (flag(TEP_EVENT_FL_FAILED) | flag(TEP_EVENT_FL_ISBPRINT) | flag(TEP_EVENT_FL_PRINTRAW))) != 0)
      return false;
    swap_ = tep_is_file_bigendian(tep) != tep_is_local_bigendian(tep);
    const int long_size = tep_get_long_size(tep);
    const char* f = ev->print_fmt.format;
    const tep_print_arg* arg = ev->print_fmt.args;
    while (*f != '\0') {
      if (*f == '%' && f[1] != '%') {
        if (!conversion(ev, long_size, f, arg)) return false;
      } else if ((f = literal(f)) == nullptr) {
        return false;
      }
    }
    return true;
  }

  // parse_arg_string: literal text up to the next conversion (nullptr: a
  // trailing backslash, which libtraceevent reads past).
  const char* literal(const char* f) {
    std::string s;
    for (; *f != '\0'; ++f) {
      if (*f == '\\') {
        ++f;
        if (*f == '\0') return nullptr;
        s += *f == 'n' ? '\n' : *f == 't' ? '\t' : *f == 'r' ? '\r' : *f;
      } else if (*f == '%') {
        if (f[1] != '%') break;
        s += '%';
        ++f;
      } else {
        s += *f;
      }
    }
    if (!s.empty()) {
      if (!pieces_.empty() && pieces_.back().what == kind::literal)
        pieces_.back().text += s;
      else
      {
        piece lit;
        lit.text = std::move(s);
        pieces_.push_back(std::move(lit));
      }
    }
    return f;
  }

  // parse_arg_format: one conversion and its argument.
  bool conversion(const tep_event* ev, int long_size, const char*& f, const tep_print_arg*& arg) {
    const char* start = f++;
    int ls = 0;
    bool modifiers_only = true;  // only l/ll between % and the conversion
    for (; *f != '\0'; ++f) {
      const char c = *f;
      if (c == 'h') { --ls; modifiers_only = false; }
      else if (c == 'l') ++ls;
      else if (c == 'L') { ls = 2; modifiers_only = false; }
      else if (c == 'z' || c == 'Z') { ls = 1; modifiers_only = false; }
      else if (c == '#' || c == '.' || c == '-' || (c >= '0' && c <= '9')) modifiers_only = false;
      else break;
    }
    const char conv = *f;
    if (conv == '\0' || arg == nullptr) return false;
    std::string spec(start, static_cast<std::size_t>(f - start + 1));
    if (spec.size() > 30) return false;
    ++f;
    piece x;
    x.conv = conv;
    x.ls = ls;
    const tep_print_arg* a = arg;
    arg = arg->next;
    if (conv == 'd' || conv == 'i' || conv == 'u' || conv == 'x' || conv == 'X' || conv == 'o') {
      if (ls < -2 || ls > 2) return false;
      if (long_size != static_cast<int>(sizeof(long)) && ls == 1) return false;  // libtraceevent rewrites %l
      x.what = kind::number;
      x.plain = modifiers_only && ls >= 0 && (conv == 'd' || conv == 'u' || conv == 'x');
      x.text = std::move(spec);
      if (!number_arg(ev, a, x)) return false;
    } else if (conv == 's') {
      x.plain = spec == "%s";
      x.text = std::move(spec);
      if (!string_arg(ev, long_size, a, x)) return false;
    } else {
      return false;  // %p (symbols, addresses), %c (may print NUL bytes), anything unknown
    }
    pieces_.push_back(std::move(x));
    return true;
  }

  static tep_format_field* field_of(const tep_event* ev, const tep_print_arg* a) {
    if (a->field.field != nullptr) return a->field.field;
    return a->field.name != nullptr ? tep_find_any_field(const_cast<tep_event*>(ev), a->field.name) : nullptr;
  }
  static bool number_size(std::uint32_t s) noexcept { return s == 1 || s == 2 || s == 4 || s == 8; }

  static bool number_arg(const tep_event* ev, const tep_print_arg* a, piece& x) {
    if (a->type == TEP_PRINT_FIELD) {
      const tep_format_field* fld = field_of(ev, a);
      if (fld == nullptr || fld->offset < 0 || !number_size(static_cast<std::uint32_t>(fld->size))) return false;
      x.offset = static_cast<std::uint32_t>(fld->offset);
      x.size = static_cast<std::uint32_t>(fld->size);
      return true;
    }
    // REC->f[N]: an element of a fixed array at a constant decimal index.
    if (a->type != TEP_PRINT_OP || a->op.op == nullptr || std::strcmp(a->op.op, "[") != 0) return false;
    const tep_print_arg* l = a->op.left;
    const tep_print_arg* r = a->op.right;
    if (l == nullptr || r == nullptr || l->type != TEP_PRINT_FIELD || r->type != TEP_PRINT_ATOM || r->atom.atom == nullptr)
      return false;
    std::uint32_t index = 0;
    const std::string_view s(r->atom.atom);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), index);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty() || (s.size() > 1 && s[0] == '0')) return false;
    const tep_format_field* fld = field_of(ev, l);
    if (fld == nullptr || fld->offset < 0 || !number_size(fld->elementsize) || index > (1u << 20)) return false;
    x.offset = static_cast<std::uint32_t>(fld->offset) + index * fld->elementsize;
    x.size = fld->elementsize;
    return true;
  }

  static bool string_arg(const tep_event* ev, int long_size, const tep_print_arg* a, piece& x) {
    if (a->type == TEP_PRINT_FIELD) {
      const tep_format_field* fld = field_of(ev, a);
      if (fld == nullptr || fld->offset < 0 || fld->size <= 0) return false;  // size 0: "the rest of the data"
      if ((fld->flags & TEP_FIELD_IS_ARRAY) == 0 && fld->size == long_size) return false;  // a pointer: printk lookup
      if ((fld->flags & TEP_FIELD_IS_DYNAMIC) != 0) return false;
      x.what = kind::fixed_string;
      x.offset = static_cast<std::uint32_t>(fld->offset);
      x.size = static_cast<std::uint32_t>(fld->size);
      return true;
    }
    if (a->type == TEP_PRINT_SYMBOL) return symbol_arg(ev, a, x);
    if (a->type != TEP_PRINT_STRING) return false;
    const tep_format_field* fld = a->string.field;
    if (fld == nullptr && a->string.string != nullptr)
      fld = tep_find_any_field(const_cast<tep_event*>(ev), a->string.string);
    if (fld == nullptr || fld->offset < 0 || fld->size != 4 || (fld->flags & TEP_FIELD_IS_RELATIVE) != 0) return false;
    x.what = kind::dynamic_string;
    x.offset = static_cast<std::uint32_t>(fld->offset);
    x.size = 4;
    return true;
  }

  // __print_symbolic(REC->f, { 0, "A" }, ...): every value a plain number
  // (libtraceevent's eval_flag: strtoull with base 0 when it starts with a digit;
  // names it knows otherwise, which are left to it here).
  static bool symbol_arg(const tep_event* ev, const tep_print_arg* a, piece& x) {
    if (a->symbol.field == nullptr || !number_arg(ev, a->symbol.field, x)) return false;
    for (const tep_print_flag_sym* f = a->symbol.symbols; f != nullptr; f = f->next) {
      if (f->value == nullptr || f->str == nullptr || !(f->value[0] >= '0' && f->value[0] <= '9')) return false;
      x.symbols.push_back(symbol_entry{std::strtoull(f->value, nullptr, 0), f->str});
    }
    x.what = kind::symbol;
    return true;
  }

  [[nodiscard]] std::uint64_t read(const unsigned char* p, std::uint32_t n) const noexcept {
    std::uint64_t v = 0;
    if (!swap_) {
      switch (n) {
        case 1: return p[0];
        case 2: { std::uint16_t t; std::memcpy(&t, p, 2); return t; }
        case 4: { std::uint32_t t; std::memcpy(&t, p, 4); return t; }
        default: std::memcpy(&v, p, 8); return v;
      }
    }
    for (std::uint32_t i = 0; i < n; ++i) v = (v << 8) | p[i];
    return v;
  }

  // The bytes `x` reads lie inside a record of `n` bytes.
  static bool inside(const piece& x, std::uint32_t n) noexcept { return x.offset <= n && n - x.offset >= x.size; }

  static void append_chars(std::string& out, const char* b, const char* e) { out.append(b, static_cast<std::size_t>(e - b)); }

  // print_arg_number: the value cast to the length modifiers' type, printed with the spec.
  [[nodiscard]] bool print_number(const piece& x, const unsigned char* d, std::uint32_t n, std::string& out) const {
    if (!inside(x, n)) return false;
    const std::uint64_t val = read(d + x.offset, x.size);
    if (x.plain) {
      char buf[24];
      std::to_chars_result r{};
      const int base = x.conv == 'x' ? 16 : 10;
      if (x.conv == 'd') {
        const long long v = x.ls == 0 ? static_cast<long long>(static_cast<int>(val)) : static_cast<long long>(val);
        r = std::to_chars(buf, buf + sizeof buf, v);
      } else {
        const unsigned long long v = x.ls == 0 ? static_cast<unsigned int>(val) : val;
        r = std::to_chars(buf, buf + sizeof buf, v, base);
      }
      append_chars(out, buf, r.ptr);
      return true;
    }
    char buf[128];
    int len = -1;
    switch (x.ls) {
      case -2: len = std::snprintf(buf, sizeof buf, x.text.c_str(), static_cast<char>(val)); break;
      case -1: len = std::snprintf(buf, sizeof buf, x.text.c_str(), static_cast<short>(val)); break;
      case 0: len = std::snprintf(buf, sizeof buf, x.text.c_str(), static_cast<int>(val)); break;
      case 1: len = std::snprintf(buf, sizeof buf, x.text.c_str(), static_cast<long>(val)); break;
      default: len = std::snprintf(buf, sizeof buf, x.text.c_str(), static_cast<long long>(val)); break;
    }
    if (len < 0 || static_cast<std::size_t>(len) >= sizeof buf) return false;  // a huge width: libtraceevent's job
    out.append(buf, static_cast<std::size_t>(len));
    return true;
  }

  static bool print_string(const piece& x, const char* s, std::size_t len, std::string& out) {
    if (x.plain) {
      out.append(s, len);
      return true;
    }
    const std::string z(s, len);
    char buf[256];
    const int w = std::snprintf(buf, sizeof buf, x.text.c_str(), z.c_str());
    if (w < 0 || static_cast<std::size_t>(w) >= sizeof buf) return false;
    out.append(buf, static_cast<std::size_t>(w));
    return true;
  }

  // print_str_arg, TEP_PRINT_SYMBOL: the first entry whose value matches, else 0x%llx.
  [[nodiscard]] bool print_symbol(const piece& x, const unsigned char* d, std::uint32_t n, std::string& out) const {
    if (!inside(x, n)) return false;
    const std::uint64_t val = read(d + x.offset, x.size);
    for (const auto& e : x.symbols)
      if (e.value == val) return print_string(x, e.text.data(), e.text.size(), out);
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, val, 16);
    out += "0x";
    append_chars(out, buf, r.ptr);
    return true;
  }

  // print_str_arg, TEP_PRINT_FIELD: the array's bytes up to its first NUL.
  static bool print_fixed(const piece& x, const unsigned char* d, std::uint32_t n, std::string& out) {
    if (!inside(x, n)) return false;
    const char* s = reinterpret_cast<const char*>(d + x.offset);
    const void* z = std::memchr(s, 0, x.size);
    const std::size_t len = z != nullptr ? static_cast<std::size_t>(static_cast<const char*>(z) - s) : x.size;
    return print_string(x, s, len, out);
  }

  // print_str_arg, TEP_PRINT_STRING: __data_loc, printed up to the NUL.
  [[nodiscard]] bool print_dynamic(const piece& x, const unsigned char* d, std::uint32_t n, std::string& out) const {
    if (!inside(x, n)) return false;  // the 4-byte __data_loc
    const auto loc = static_cast<std::uint32_t>(read(d + x.offset, 4));
    const std::uint32_t o = loc & 0xffffu;
    const std::uint32_t l = loc >> 16;
    if (o > n) return false;                       // libtraceevent would read at offset 0
    if (l == 0 || o + l > n) return true;          // prints nothing
    const char* s = reinterpret_cast<const char*>(d + o);
    const void* z = std::memchr(s, 0, n - o);
    if (z == nullptr) return false;                // libtraceevent would read past the record
    return print_string(x, s, static_cast<std::size_t>(static_cast<const char*>(z) - s), out);
  }
};

/// The compiled programs of one event parser, by event id.
class info_cache {
 public:
  /// The program of `ev` (compiled on first use); the cache empties when `tep` changes.
  [[nodiscard]] const info_program& get(tep_handle* tep, const tep_event* ev) {
    if (tep != tep_) {
      programs_.clear();
      tep_ = tep;
    }
    const int id = ev->id;
    if (id < 0 || id > 65535) return none_;
    const auto i = static_cast<std::size_t>(id);
    if (i >= programs_.size()) programs_.resize(i + 1);
    slot& s = programs_[i];
    if (!s.compiled) {
      s.program = info_program::compile(tep, ev);
      s.compiled = true;
    }
    return s.program;
  }

 private:
  struct slot {
    info_program program;
    bool compiled = false;
  };
  tep_handle* tep_ = nullptr;
  std::vector<slot> programs_;
  info_program none_;
};

}  // namespace tsync::inline TSYNC_ABI::io::detail
