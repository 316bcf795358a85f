// A consumer of the installed optional component tsync::tracecmd: reads the
// events of the trace.dat given as argument and expects some.
#include <tsync/io/tracecmd_events.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto f = tsync::io::tracecmd_file::open(argv[1]);
  if (!f) {
    std::fprintf(stderr, "%s\n", f.error().message.c_str());
    return 1;
  }
  unsigned long n = 0;
  while (f->next() != nullptr) ++n;
  std::printf("%lu events\n", n);
  return n > 0 ? 0 : 1;
}
