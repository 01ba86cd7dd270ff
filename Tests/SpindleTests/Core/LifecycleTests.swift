import Testing
@testable import Spindle

/// The executor lifecycle's transitions (Core/Lifecycle.swift), without threads.
@Suite struct LifecycleTests {
    @Test func exactlyOneCallerBeginsTheShutdown() {
        var state = LifecycleState()
        let actions = (0..<3).map { _ in state.beginShutdown() }
        #expect(actions == [.begin, .awaitReport, .awaitReport])
        #expect(state.shutdownBegun && state.phase == .running)
    }

    @Test func thePhaseOnlyMovesForward() {
        var state = LifecycleState()
        let first = state.requestStop()
        let second = state.requestStop()
        #expect(first && !second)
        #expect(state.isStopping && !state.isStopped)
        state.markStopped()
        let afterStopped = state.requestStop()
        #expect(!afterStopped)
        #expect(state.isStopping && state.isStopped)
    }

    /// An event loop stopped by the main executor's `stop()` without a shutdown must still let
    /// a later shutdown begin (and cancel its tasks), or that shutdown would wait for a report
    /// nobody writes.
    @Test func aShutdownCanBeginAfterAStopWithoutOne() {
        var state = LifecycleState()
        let stopped = state.requestStop()
        #expect(stopped && !state.shutdownBegun)
        let action = state.beginShutdown()
        #expect(action == .begin)
        #expect(state.isStopping)
    }

    @Test func aFailedStartStopsFromRunning() {
        var state = LifecycleState()
        state.markStopped()
        #expect(state.isStopped && !state.shutdownBegun)
    }

    @Test func everyStateSurvivesTheCellsEncoding() {
        for begun in [false, true] {
            for phase in [LifecycleState.Phase.running, .stopping, .stopped] {
                var state = LifecycleState()
                if begun { _ = state.beginShutdown() }
                if phase >= .stopping { _ = state.requestStop() }
                if phase == .stopped { state.markStopped() }
                #expect(LifecycleState(bits: state.bits) == state)
            }
        }
    }

    @Test func theCellAppliesTransitionsAndAnswersTheHotPathCheck() {
        let cell = Lifecycle()
        #expect(!cell.isStopping && !cell.isShutDown && !cell.isStopped)
        #expect(cell.beginShutdown() == .begin)
        #expect(cell.isShutDown && !cell.isStopping)
        #expect(cell.beginShutdown() == .awaitReport)
        #expect(cell.requestStop())
        #expect(cell.isStopping && !cell.isStopped)
        cell.markStopped()
        #expect(cell.isStopping && cell.isStopped && cell.isShutDown)
    }
}
