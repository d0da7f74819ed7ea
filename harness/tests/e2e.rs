fn main() {
    harness::child::dispatch();
}
