// Spawn trees: a random tree of tasks whose nodes start their children in one of four ways
// (task-group children, an `async let` pair, tasks spawned on the host and awaited, or one
// after another) and yield a random number of times on the way. Each node marks its slot in
// the round's ledger and returns how many nodes of its subtree ran.
//
// Invariants: no node runs twice (checked as it happens); the count the root returns equals
// the number of slots marked (no node is counted without running or runs without being
// counted); and unless the round was cancelled, every node ran exactly once. One round in
// eight cancels the tree's root at a random point; a cancelled node starts no children.

enum SpawnTreeMix {
    struct Node: Sendable {
        enum Children: Sendable { case group, asyncLetPair, spawned, sequential }
        let id: Int
        let yields: Int
        let mode: Children
        let children: [Node]
    }

    static func run(_ round: Round) async {
        var rng = round.rng()
        var nextID = 0
        let tree = plan(depth: rng.int(1...5), rng: &rng, nextID: &nextID)
        let nodes = nextID
        let ledger = Ledger(count: nodes, round: round)
        round.phase("tree of \(nodes) nodes")
        guard let root = round.spawn({ await visit(tree, ledger, round) }) else { return }
        let cancelRequested = rng.oneIn(8)
        let canceller = cancelRequested ? round.cancelLater(root, &rng) : nil
        let counted = await root.value
        await canceller?.value
        let cancelled = cancelRequested || round.cycleEndsAbruptly
        let ran = ledger.ran
        if counted != ran { round.fail("the tree counted \(counted) nodes but \(ran) ran (of \(nodes))") }
        if !cancelled { ledger.expectAllRanOnce("tree of \(nodes) nodes, not cancelled") }
        round.counters.add(units: ran, cancelled: cancelled ? nodes - ran : 0)
    }

    private static func plan(depth: Int, rng: inout SplitMix, nextID: inout Int) -> Node {
        let id = nextID
        nextID += 1
        let fanout = depth == 0 ? 0 : rng.int(0...6)
        var mode: Node.Children = [.group, .spawned, .sequential][rng.int(0...2)]
        if fanout == 2 && rng.oneIn(2) { mode = .asyncLetPair }
        let children = (0..<fanout).map { _ in plan(depth: depth - 1, rng: &rng, nextID: &nextID) }
        return Node(id: id, yields: rng.oneIn(3) ? rng.int(1...8) : 0, mode: mode, children: children)
    }

    /// Runs `node` and its subtree; returns how many of its nodes ran.
    private static func visit(_ node: Node, _ ledger: Ledger, _ round: Round) async -> Int {
        ledger.mark(node.id)
        for _ in 0..<node.yields { await Task.yield() }
        if Task.isCancelled || node.children.isEmpty { return 1 }
        switch node.mode {
        case .group:
            return await withTaskGroup(of: Int.self) { group in
                for child in node.children { group.addTask { await visit(child, ledger, round) } }
                return await group.reduce(1, +)
            }
        case .asyncLetPair:
            async let first = visit(node.children[0], ledger, round)
            async let second = visit(node.children[1], ledger, round)
            return await 1 + first + second
        case .spawned:
            // Spawned tasks do not inherit cancellation: pass it on, as a program would.
            let tasks = node.children.compactMap { child in round.spawn { await visit(child, ledger, round) } }
            return await withTaskCancellationHandler {
                var sum = 1
                for task in tasks { sum += await task.value }
                return sum
            } onCancel: {
                for task in tasks { task.cancel() }
            }
        case .sequential:
            var sum = 1
            for child in node.children { sum += await visit(child, ledger, round) }
            return sum
        }
    }
}
