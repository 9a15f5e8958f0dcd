// Uses the embedded slab exactly as the README shows; exits non-zero on any surprise.
#include <cstdio>
#include <slab/client.hpp>
#include <slab/observer.hpp>
#include <slab/slab.hpp>

struct order {
  long id;
  double price;
  order(long i, double p) : id(i), price(p) {}
};

int main() {
  slab::slab<order> book;
  const slab::key k = book.emplace(42, 100.5);
  const order* o = book.get(k);
  if (o == nullptr || o->id != 42) return 1;
  const slab::key again = slab::key::from_raw(k.raw());
  if (!book.erase(again) || book.get(k) != nullptr || book.erase(k)) return 2;
  // The client library links and reports a missing daemon as the typed error it promises.
  try {
    (void)slab::client::connect("/nonexistent/shmd.sock");
    return 3;
  } catch (const slab::error& e) {
    if (e.code() != slab::errc::no_daemon) return 4;
  }
  // So does the read-only observer that slabctl uses.
  try {
    slab::observe::observer o("/nonexistent/shmd.sock");
    return 5;
  } catch (const slab::error& e) {
    if (e.code() != slab::errc::no_daemon) return 6;
  }
  std::puts("downstream: ok");
  return 0;
}
